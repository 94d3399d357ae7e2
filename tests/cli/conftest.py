from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner


@pytest.fixture
def cli() -> CliRunner:
    return CliRunner()


@pytest.fixture
def env_database(mongodb_uri: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """Point the CLI (which reads its settings from the environment) at the test database."""
    monkeypatch.setenv("MONGODB_URI", mongodb_uri)
    monkeypatch.setenv("SCHEDULER_MONGODB_TIMEOUT_SECONDS", "5")
    monkeypatch.setenv("SCHEDULER_MONGODB_RETRY_ATTEMPTS", "2")
    # No SMTP server in these tests: the file transport keeps health-check's
    # mail check meaningful (disk space) without one.
    monkeypatch.setenv("EMAIL_TRANSPORT", "file")
    monkeypatch.setenv("EMAIL_OUTBOX_DIR", str(tmp_path / "outbox"))
    return mongodb_uri

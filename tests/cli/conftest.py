from __future__ import annotations

import pytest
from typer.testing import CliRunner


@pytest.fixture
def cli() -> CliRunner:
    return CliRunner()


@pytest.fixture
def env_database(mongodb_uri: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point the CLI (which reads its settings from the environment) at the test database."""
    monkeypatch.setenv("MONGODB_URI", mongodb_uri)
    monkeypatch.setenv("SCHEDULER_MONGODB_TIMEOUT_SECONDS", "5")
    monkeypatch.setenv("SCHEDULER_MONGODB_RETRY_ATTEMPTS", "2")
    return mongodb_uri

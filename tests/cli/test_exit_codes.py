"""One command-line test per exit code (the table in --help and the README)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from formafriend_scheduler.cli.app import app
from formafriend_scheduler.cli.state import AppState
from formafriend_scheduler.clock import FrozenClock
from formafriend_scheduler.config import load_settings
from formafriend_scheduler.store import connect
from tests import factories
from tests.jobs.monthly_helpers import DUE_WHENEVER, SEND_MOMENT
from tests.smtpserver import SmtpServer

REPO = Path(__file__).parents[2]


@pytest.fixture
def mailing(env_database: str, smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch) -> str:
    """A due user with three contacts, and the test SMTP server."""
    monkeypatch.setenv("EMAIL_TRANSPORT", "smtp")
    monkeypatch.setenv("SMTP_URL", smtp_server.url)
    factories.one_user_with_contacts(env_database)
    return env_database


def monthly(cli: CliRunner) -> tuple[int, dict[str, object]]:
    """A run at the user's send moment (the defaults: the 5th, 18:00 Paris)."""
    result = cli.invoke(
        app,
        ["monthly-invitations", "--workers", "0", "--json"],
        obj=AppState(clock=FrozenClock(SEND_MOMENT)),
    )
    return result.exit_code, json.loads(result.stdout) if result.stdout else {}


def test_0_when_everything_went_out(cli: CliRunner, mailing: str) -> None:
    code, report = monthly(cli)
    assert (code, report["status"]) == (0, "success")


def test_1_when_the_job_failed(cli: CliRunner, mailing: str, smtp_server: SmtpServer) -> None:
    smtp_server.stop()
    code, report = monthly(cli)
    assert (code, report["status"]) == (1, "failed")


def test_2_on_a_usage_or_configuration_error(cli: CliRunner) -> None:
    assert cli.invoke(app, ["monthly-invitations", "--workers", "-1"]).exit_code == 2
    assert cli.invoke(app, ["no-such-command"]).exit_code == 2


def test_3_when_some_items_failed(cli: CliRunner, mailing: str, smtp_server: SmtpServer) -> None:
    smtp_server.refuse_always("c1@x.org", "550 5.1.1 User unknown")
    code, report = monthly(cli)
    assert (code, report["status"]) == (3, "partial")


def test_75_when_another_live_run_holds_the_job(cli: CliRunner, mailing: str) -> None:
    store = connect(load_settings(mongodb_uri=mailing))
    store.locks.try_acquire(
        "monthly-invitations", "other-run", "host-2", 1, SEND_MOMENT, timedelta(minutes=5)
    )
    code, _ = monthly(cli)
    assert code == 75


@pytest.mark.real_server_only
@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_130_and_143_when_interrupted(
    mongodb_uri: str, smtp_server: SmtpServer, signum: int, code: int
) -> None:
    store = factories.one_user_with_contacts(mongodb_uri)
    smtp_server.recorder.stall_after = 1  # the second message hangs: the run is mid-send
    env = {
        **os.environ,
        "MONGODB_URI": mongodb_uri,
        "SMTP_URL": smtp_server.url,
        **DUE_WHENEVER,
        "SCHEDULER_SHUTDOWN_GRACE_SECONDS": "1",
    }
    run = subprocess.Popen(
        [sys.executable, "-m", "formafriend_scheduler", "monthly-invitations", "--workers", "0"],
        env=env,
        cwd=REPO,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert smtp_server.recorder.stalled.wait(60)
    run.send_signal(signum)
    _, stderr = run.communicate(timeout=60)
    assert run.returncode == code
    assert "interrupted" in stderr
    (record,) = store.jobs.find(job_type="monthly-invitations")
    assert record["status"] == "interrupted"
    assert store.locks.holder_of("monthly-invitations") is None

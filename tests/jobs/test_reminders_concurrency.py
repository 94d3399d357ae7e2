"""Two reminder runs started together against the real server: each reminder once."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from formafriend_scheduler.clock import SystemClock
from formafriend_scheduler.store import connect
from tests.jobs.monthly_helpers import add_contacts, add_user, monthly_settings
from tests.jobs.test_reminders import add_invitation, reminders_of
from tests.smtpserver import SmtpServer

REPO = Path(__file__).parents[2]


def quiet_hours_open_now() -> dict[str, str]:
    """A reminder window around the subprocesses' own clock (real, or CI's faked
    one) in the senders' timezone, spanning midnight when it must."""
    local = SystemClock().now().astimezone(ZoneInfo("Europe/Paris"))
    start, end = local - timedelta(hours=1), local + timedelta(hours=2)
    return {
        "SCHEDULER_REMINDER_WINDOW_START": f"{start:%H:%M}",
        "SCHEDULER_REMINDER_WINDOW_END": f"{end:%H:%M}",
    }


@pytest.mark.real_server_only
def test_two_concurrent_runs_send_each_reminder_once(
    mongodb_uri: str, smtp_server: SmtpServer
) -> None:
    settings = monthly_settings(mongodb_uri, smtp_server.url)
    store = connect(settings)
    alice = add_user(store)
    emails = [f"c{i:02d}@x.org" for i in range(40)]
    add_contacts(store, alice, *emails)
    sent_at = SystemClock().now() - timedelta(days=3, minutes=1)
    invitations = [
        add_invitation(
            store,
            alice,
            email,
            tracking={"sentAt": sent_at},
            expiresAt=sent_at + timedelta(days=60),
        )
        for email in emails
    ]
    env = {
        **os.environ,
        "MONGODB_URI": mongodb_uri,
        "SMTP_URL": smtp_server.url,
        **quiet_hours_open_now(),
        "SCHEDULER_INVITATION_BATCH_SIZE": "5",
    }
    command = [sys.executable, "-m", "formafriend_scheduler", "reminders", "--workers", "0"]
    runs = [subprocess.Popen(command, env=env, cwd=REPO) for _ in range(2)]
    codes = sorted(run.wait(timeout=120) for run in runs)

    assert codes in ([0, 0], [0, 75])  # the second either waited its turn or found the lock
    assert smtp_server.recipients() == {email: 1 for email in emails}
    assert all(reminders_of(store, invitation) == ["first"] for invitation in invitations)

"""Crashes and stuck workers: nothing is invited twice, each pending e-mail is
sent at most once more, and the run carries on."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from formafriend_scheduler.clock import FrozenClock, SystemClock
from formafriend_scheduler.eligibility import Month
from formafriend_scheduler.errors import ExitCode
from formafriend_scheduler.jobs.delivery import CHUNK_SIZE
from formafriend_scheduler.store import connect
from tests.jobs.monthly_helpers import (
    DUE_WHENEVER,
    add_contacts,
    add_user,
    at_send_moment,
    monthly_settings,
    run_monthly,
)
from tests.smtpserver import SmtpServer

REPO = Path(__file__).parents[2]


@pytest.mark.real_server_only
def test_after_a_sigkill_mid_run_the_next_run_finishes_without_duplicate_invitations(
    mongodb_uri: str, smtp_server: SmtpServer
) -> None:
    settings = monthly_settings(mongodb_uri, smtp_server.url, lock_ttl_seconds=5)
    store = connect(settings)
    alice = add_user(store)
    emails = [f"c{i:02d}@x.org" for i in range(60)]
    add_contacts(store, alice, *emails)
    month = Month.containing(SystemClock().now(), settings.zone)
    # Given the mail server stalls on the 26th message (the 2nd chunk is in flight),
    smtp_server.recorder.stall_after = 25
    env = {
        **os.environ,
        "MONGODB_URI": mongodb_uri,
        "SMTP_URL": smtp_server.url,
        "SCHEDULER_LOCK_TTL_SECONDS": "5",
        **DUE_WHENEVER,
    }
    crashed = subprocess.Popen(
        [sys.executable, "-m", "formafriend_scheduler", "monthly-invitations", "--workers", "0",
         "--month", str(month)],
        env=env,
        cwd=REPO,
    )  # fmt: skip
    try:
        assert smtp_server.recorder.stalled.wait(60), "the run never reached the stall"
    finally:
        crashed.send_signal(signal.SIGKILL)  # no handler, no cleanup: a crash
        crashed.wait()
    smtp_server.recorder.stall_after = None
    smtp_server.recorder.release.set()  # the stalled message is delivered after all

    # Past the dead run's lease (5 s) and past the time a live worker could
    # still hold its in-flight chunk (the batch timeout, 3 s here).
    resumed_settings = monthly_settings(
        mongodb_uri, smtp_server.url, monthly_job_day=1, monthly_job_hour=0, worker_timeout_ms=3000
    )
    clock = FrozenClock(SystemClock().now() + timedelta(seconds=6))
    result = run_monthly(resumed_settings, connect(resumed_settings), clock, month=month)

    assert result.exit_code == ExitCode.OK
    assert store.db["invitations"].count_documents({}) == 60  # none created twice
    assert store.db["invitations"].count_documents({"status": "sent"}) == 60
    received = smtp_server.recipients()
    assert set(received) == set(emails)  # everyone got their invitation
    duplicates = sum(count - 1 for count in received.values())
    assert 0 < duplicates <= CHUNK_SIZE  # at most the chunk that was in flight
    assert max(received.values()) == 2
    dead = store.jobs.find(job_type="monthly-invitations", status="abandoned")
    assert len(dead) == 1


@pytest.mark.real_server_only
def test_a_batch_past_the_worker_timeout_is_retried_once_then_reported_failed(
    mongodb_uri: str, smtp_server: SmtpServer
) -> None:
    settings = monthly_settings(
        mongodb_uri, smtp_server.url, worker_timeout_ms=2000, invitation_batch_size=5
    )
    store = connect(settings)
    alice = add_user(store)
    add_contacts(store, alice, *(f"c{i:02d}@x.org" for i in range(15)))
    # Given the server hangs on c05, the sixth message of the user's batch,
    smtp_server.recorder.stall_for = {"c05@x.org"}

    result = run_monthly(settings, store, at_send_moment(), workers=2)
    smtp_server.recorder.release.set()

    # then the batch that creates and sends them times out once (its retry
    # finds them created and leaves them to the sending pass), and the
    # sending pass's batch of five that holds c05 times out twice: failed.
    assert result.stats["workerTimeouts"] == 3
    assert result.stats["failedBatches"] == 1
    # c00-c04 went out before the stall, in the chunk the killed worker had
    # claimed: sent again (the crash bound: at most that chunk), then c10-c14.
    assert result.stats["sentInvitations"] == 10
    assert max(smtp_server.recipients().values()) <= 2
    assert (result.status, result.exit_code) == ("partial", ExitCode.PARTIAL)
    alerts = [e for e in result.events if e["event"] == "alerts-triggered"]
    assert [a["alerts"][0]["type"] for a in alerts] == ["workers", "workers", "workers"]
    messages = [a["alerts"][0]["message"] for a in alerts]
    assert "batch 1 (create-and-send, attempt 1) timed out" in messages[0]
    assert "(send, attempt 2) timed out" in messages[2]

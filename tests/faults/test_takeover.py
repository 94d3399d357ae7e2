"""Concurrent starters and a run paused past its lease: one run works at a
time, and a run whose lease was taken over writes nothing more, in any of its
processes."""

from __future__ import annotations

import signal
import time
from datetime import UTC, datetime

import pytest

from tests.faults.harness import LEASE_SECONDS, TAKEOVER_MS, WORKERS, Mailing


def starters(mailing: Mailing, count: int) -> None:
    runs = [mailing.start() for _ in range(count)]
    codes = [run.wait() for run in runs]

    assert set(codes) <= {0, 75} and codes.count(0) >= 1, codes
    sending = [r for r in mailing.records() if r["stats"].get("sentInvitations")]
    assert len(sending) == 1  # one run sent everything; the others waited or found nothing
    mailing.assert_exactly_once()


def test_concurrent_starters_one_runs_the_others_exit_75(mailing: Mailing) -> None:
    starters(mailing, 6)


@pytest.mark.slow
def test_twenty_concurrent_starters(mailing: Mailing) -> None:
    starters(mailing, 20)


def test_a_run_paused_past_its_lease_writes_nothing_after_the_takeover(mailing: Mailing) -> None:
    paused = mailing.start()
    mailing.wait_for_messages(30)
    # Given its whole process group is paused (SIGSTOP) past its lease and claims,
    paused.signal_group(signal.SIGSTOP)
    time.sleep(max(LEASE_SECONDS, TAKEOVER_MS / 1000) + 1)
    taken_over_at = datetime.now(UTC)
    # when another run takes over and finishes the month,
    assert mailing.run(SCHEDULER_WORKER_TIMEOUT=str(TAKEOVER_MS)) == 0
    received_before_resuming = len(mailing.smtp.received)
    # and the paused run resumes,
    paused.signal_group(signal.SIGCONT)
    code = paused.wait()

    # then it sent at most what each worker had in flight, and wrote nothing.
    assert code == 75
    assert len(mailing.smtp.received) - received_before_resuming <= WORKERS
    old_run = mailing.records()[0]
    # (whichever it learns first: its lease expired, taken over, its record taken over)
    assert (old_run["status"], old_run["exitCode"]) == ("interrupted", 75)
    late = mailing.store.db["scheduler_outbox"].count_documents(
        {"runId": old_run["_id"], "updatedAt": {"$gt": taken_over_at}}
    )
    assert late == 0
    mailing.assert_exactly_once(crashes=1)

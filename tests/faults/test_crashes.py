"""kill -9 of a run's process group or of its parent alone, at moments chosen
by progress, and SIGTERM: one invitation per recipient and month, at most one
chunk per worker sent twice per crash, and the next run finishes the work."""

from __future__ import annotations

import signal
import time

import pytest

from tests.faults.harness import Mailing


def test_kill_9_of_the_group_mid_send_then_the_next_run_finishes(mailing: Mailing) -> None:
    run = mailing.start()
    mailing.wait_for_messages(30)

    run.signal_group(signal.SIGKILL)
    run.wait()
    code = mailing.take_over()

    assert code == 0, mailing.records()[-1]
    mailing.assert_exactly_once(crashes=1)
    first, *_, last = mailing.records()
    assert first["status"] == "abandoned"  # marked by the run that took over
    assert last["status"] == "success"


@pytest.mark.slow
def test_repeated_kills_on_one_database_never_invite_twice(mailing: Mailing) -> None:
    run = mailing.start()
    for progress in (15, 45, 80):
        mailing.wait_for_messages(progress)
        run.signal_group(signal.SIGKILL)
        run.wait()
        run = mailing.start_after_crash()
    run.signal_group(signal.SIGKILL)  # a fourth kill, before the run got far
    run.wait()

    assert mailing.take_over() == 0
    mailing.assert_exactly_once(crashes=4)


def test_kill_9_of_the_parent_alone_leaves_no_worker_sending(mailing: Mailing) -> None:
    run = mailing.start()
    mailing.wait_for_messages(30)

    run.process.kill()  # the parent only: its workers die with it (PR_SET_PDEATHSIG)
    run.wait()
    time.sleep(0.5)  # what a worker had in flight arrives
    settled = len(mailing.smtp.received)
    time.sleep(1.5)

    assert len(mailing.smtp.received) == settled  # nobody sends on unsupervised
    assert mailing.take_over() == 0
    mailing.assert_exactly_once(crashes=1)


@pytest.mark.parametrize("signals", [1, 2], ids=["sigterm", "double-sigterm"])
def test_sigterm_finishes_or_cuts_in_flight_work_and_is_recorded_interrupted(
    mailing: Mailing, signals: int
) -> None:
    if signals == 2:
        # Given a message on the wire when the signals come (the mail server
        # holds the 25th): a run with nothing in flight stops at the first
        # signal, and the second would find no handler left (DocumentDB: 40 ms).
        mailing.smtp.recorder.stall_after = 25
    run = mailing.start()
    mailing.wait_for_messages(20)
    if signals == 2:
        assert mailing.smtp.recorder.stalled.wait(60), "the run never reached the stall"

    for _ in range(signals):  # a second one interrupts the batches in flight at once
        run.signal_group(signal.SIGTERM)
        time.sleep(0.1)
    code = run.wait()
    mailing.smtp.recorder.stall_after = None
    mailing.smtp.recorder.release.set()

    assert code == 143
    (record,) = mailing.records()
    assert record["status"] == "interrupted" and record["exitCode"] == 143
    assert mailing.lock_holder() is None  # released: the next run need not wait
    if signals == 1:
        # Workers finish the chunk they are in and claim no other: nothing is
        # left claimed, so a plain next run sends the rest.
        assert mailing.store.db["scheduler_outbox"].count_documents({"state": "handed"}) == 0
    # What the stop left for the next run is pending, not failed: no error
    # rate, no alert (a deploy's SIGTERM used to raise one).
    assert record["stats"]["failedInvitations"] == 0
    error_rate_alert = {"_id": "run:monthly-invitations:error-rate"}
    assert mailing.store.db["scheduler_alerts"].count_documents(error_rate_alert) == 0
    # (an interrupted batch leaves its chunk claimed: taken over once stale)
    assert (mailing.take_over() if signals == 2 else mailing.run()) == 0
    mailing.assert_exactly_once(crashes=signals - 1)

"""The database stopped mid-run: for less than the retries, the run does not
notice; for longer, it stops, exits 75, and its record is closed and its
lease released once the database is back."""

from __future__ import annotations

import time

from tests.faults.harness import Mailing
from tests.realserver import RestartableServer


def test_an_outage_shorter_than_the_retries_goes_unnoticed(
    restartable: RestartableServer, outage_mailing: Mailing
) -> None:
    # Six attempts wait 0.5 + 1 + 2 + 4 + 8 s between them; the lease (15 s)
    # outlasts the outage, as the default (120 s) outlasts one of 80 s.
    run = outage_mailing.start(
        SCHEDULER_MONGODB_RETRY_ATTEMPTS="6", SCHEDULER_LOCK_TTL_SECONDS="15"
    )
    outage_mailing.wait_for_messages(20)

    restartable.stop()
    time.sleep(2)
    restartable.start()

    assert run.wait() == 0, run.stderr
    outage_mailing.assert_exactly_once()


def test_an_outage_longer_than_the_retries_exits_75_and_closes_the_record_when_back(
    restartable: RestartableServer, outage_mailing: Mailing
) -> None:
    # Two attempts give up after about 2.5 s; the lease (15 s) outlasts the
    # outage (6 s), and a batch may take 8 s, longer than the retries.
    run = outage_mailing.start(
        SCHEDULER_MONGODB_TIMEOUT_SECONDS="1",
        SCHEDULER_MONGODB_RETRY_ATTEMPTS="2",
        SCHEDULER_LOCK_TTL_SECONDS="15",
        SCHEDULER_WORKER_TIMEOUT="8000",
    )
    outage_mailing.wait_for_messages(20)

    restartable.stop()
    time.sleep(6)
    restartable.start()
    code = run.wait()

    assert code == 75, run.stderr
    (record,) = outage_mailing.records()
    assert (record["status"], record["exitCode"]) == ("failed", 75)
    assert record["error"]["class"] == "DatabaseUnavailable"
    assert outage_mailing.lock_holder() is None
    # The next run takes over the claims the failed batches left.
    assert outage_mailing.take_over() == 0
    outage_mailing.assert_exactly_once(crashes=1)

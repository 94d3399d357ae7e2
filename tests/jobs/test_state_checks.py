"""Stale jobs and a stuck queue, with an injected clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from formafriend_scheduler.clock import FrozenClock
from formafriend_scheduler.config import Settings
from formafriend_scheduler.errors import HealthCode
from formafriend_scheduler.jobs.state_checks import check_queued_backlog, check_stale_success
from formafriend_scheduler.store import Store
from tests import factories

HOUR = timedelta(hours=1)
START = datetime(2027, 1, 1, 12, 0, tzinfo=UTC)


def record(store: Store, job: str, status: str, at: datetime, dry_run: bool = False) -> None:
    store.db["scheduler_jobs"].insert_one(
        {
            "_id": f"{job}-{at.isoformat()}-{status}-{dry_run}",
            "type": job,
            "status": status,
            "startedAt": at,
            "options": {"dry_run": dry_run},
        }
    )


def test_a_fresh_install_is_not_stale(settings: Settings, store: Store) -> None:
    assert check_stale_success(store, settings, START).code is HealthCode.OK


def test_reminders_and_cleanup_must_run_within_their_period(
    settings: Settings, store: Store
) -> None:
    clock = FrozenClock(START)
    record(store, "reminders", "success", START)
    record(store, "cleanup", "success", START)
    clock.advance(3 * HOUR)
    assert check_stale_success(store, settings, clock.now()).code is HealthCode.OK
    clock.advance(HOUR)
    stale = check_stale_success(store, settings, clock.now())
    assert (
        stale.code is HealthCode.WARNING and "reminders has not run successfully" in stale.summary
    )
    record(store, "reminders", "failed", clock.now())  # a failed run does not count
    assert check_stale_success(store, settings, clock.now()).code is HealthCode.WARNING
    record(store, "reminders", "success", clock.now(), dry_run=True)  # sent nothing
    assert check_stale_success(store, settings, clock.now()).code is HealthCode.WARNING
    record(store, "reminders", "partial", clock.now())
    assert check_stale_success(store, settings, clock.now()).code is HealthCode.OK


def test_no_monthly_cycle_by_the_day_after_the_send_day_is_critical(
    settings: Settings, store: Store
) -> None:
    # The scheduler has run since before this month's 5th (18:00 Paris).
    record(store, "cleanup", "success", START)
    on_the_6th = datetime(2027, 1, 6, 22, 0, tzinfo=UTC)  # 23:00 Paris: still the 6th
    record(store, "reminders", "success", on_the_6th)
    record(store, "cleanup", "success", on_the_6th)
    assert check_stale_success(store, settings, on_the_6th).code is HealthCode.OK
    on_the_7th = datetime(2027, 1, 6, 23, 30, tzinfo=UTC)
    record(store, "reminders", "success", on_the_7th)
    missed = check_stale_success(store, settings, on_the_7th)
    assert missed.code is HealthCode.CRITICAL and "monthly cycle" in missed.summary
    record(store, "monthly-invitations", "success", datetime(2027, 1, 5, 17, 5, tzinfo=UTC))
    assert check_stale_success(store, settings, on_the_7th).code is HealthCode.OK


def test_invitations_queued_for_over_six_hours_are_stuck(settings: Settings, store: Store) -> None:
    owner = factories.user()["_id"]
    created = START - 7 * HOUR
    store.db["invitations"].insert_many(
        [
            factories.invitation(owner, "old@x.org", "2027-01", expires_at=START, status="queued",
                                 tracking={"createdAt": created}, createdAt=created),
            factories.invitation(owner, "new@x.org", "2027-01", expires_at=START, status="queued",
                                 tracking={"createdAt": START - HOUR}, createdAt=START - HOUR),
            factories.invitation(owner, "sent@x.org", "2027-01", expires_at=START, status="sent",
                                 tracking={"createdAt": created}, createdAt=created),
        ]
    )  # fmt: skip
    stuck = check_queued_backlog(store, settings, START)
    assert stuck.code is HealthCode.WARNING
    assert stuck.details["stuck"] == 1 and "7 h old" in stuck.summary
    store.db["invitations"].update_one({"toEmail": "old@x.org"}, {"$set": {"status": "sent"}})
    assert check_queued_backlog(store, settings, START).code is HealthCode.OK

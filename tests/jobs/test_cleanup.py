"""cleanup: each rule on documents as the app leaves them (optional fields missing)."""

from __future__ import annotations

import os
import signal
from datetime import datetime, timedelta
from typing import Any

import pytest

from formafriend_scheduler.clock import FrozenClock
from formafriend_scheduler.config import Settings
from formafriend_scheduler.errors import ExitCode
from formafriend_scheduler.hooks.events import EventBus
from formafriend_scheduler.jobs.cleanup import CleanupJob
from formafriend_scheduler.lifecycle.runner import Runner, RunResult
from formafriend_scheduler.store import Store, connect
from formafriend_scheduler.store.invitations import InvitationRepository
from tests import factories
from tests.conftest import make_settings

DAY = timedelta(days=1)


def run_cleanup(settings: Settings, store: Store, clock: FrozenClock, **options: Any) -> RunResult:
    return Runner(settings, store, clock, EventBus(clock)).run(CleanupJob(), options)


def statuses(store: Store) -> dict[str, str | None]:
    return {doc["toEmail"]: doc.get("status") for doc in store.db["invitations"].find()}


def add_invitations(store: Store, now: datetime, specs: dict[str, dict[str, Any]]) -> None:
    owner = factories.user()["_id"]
    docs = []
    for email, spec in specs.items():
        fields = dict(spec)
        expires_at = fields.pop("expiresAt", now - DAY)
        doc = factories.invitation(owner, email, "2026-09", expires_at=expires_at, **fields)
        if expires_at is None:
            del doc["expiresAt"]
        docs.append(doc)
    store.db["invitations"].insert_many(docs)


def test_invitations_past_expiry_are_marked_expired_unless_done(
    settings: Settings, store: Store, clock: FrozenClock
) -> None:
    now = clock.now()
    add_invitations(
        store,
        now,
        {
            "no-status@x.org": {},  # the app's default status: queued
            "queued@x.org": {"status": "queued"},
            "sent@x.org": {"status": "sent"},
            "opened@x.org": {"status": "opened"},
            "started@x.org": {"status": "started"},
            "submitted@x.org": {"status": "submitted"},
            "cancelled@x.org": {"status": "cancelled"},
            "future@x.org": {"status": "sent", "expiresAt": now + DAY},
            "no-expiry@x.org": {"status": "sent", "expiresAt": None},
            "malformed@x.org": {"status": "sent", "expiresAt": "2020-01-01"},
        },
    )

    result = run_cleanup(settings, store, clock)

    assert result.exit_code == ExitCode.OK
    assert result.stats["expiredInvitations"] == 5
    assert statuses(store) == {
        "no-status@x.org": "expired",
        "queued@x.org": "expired",
        "sent@x.org": "expired",
        "opened@x.org": "expired",
        "started@x.org": "expired",
        "submitted@x.org": "submitted",
        "cancelled@x.org": "cancelled",
        "future@x.org": "sent",
        "no-expiry@x.org": "sent",
        "malformed@x.org": "sent",
    }
    expired = store.db["invitations"].find_one({"toEmail": "sent@x.org"})
    assert expired is not None and expired["updatedAt"] == now


def test_expired_invitations_past_retention_are_deleted(
    settings: Settings, store: Store, clock: FrozenClock
) -> None:
    now = clock.now()
    retention = timedelta(days=settings.expired_token_retention_days)
    add_invitations(
        store,
        now,
        {
            "old-expired@x.org": {"status": "expired", "expiresAt": now - retention - DAY},
            "recent-expired@x.org": {"status": "expired", "expiresAt": now - retention + DAY},
            "old-submitted@x.org": {"status": "submitted", "expiresAt": now - retention - DAY},
        },
    )

    result = run_cleanup(settings, store, clock)

    assert result.stats["deletedInvitations"] == 1
    assert set(statuses(store)) == {"recent-expired@x.org", "old-submitted@x.org"}


def test_temporary_bounces_older_than_30_days_are_reset(
    settings: Settings, store: Store, clock: FrozenClock
) -> None:
    now = clock.now()
    owner = factories.user()["_id"]
    old, recent = now - 31 * DAY, now - 29 * DAY
    soft = {"emailStatus": "bounced_temporary"}
    store.db["contacts"].insert_many(
        [
            factories.contact(
                owner, "reset@x.org", bounceCount=2, lastBounceAt=old, bounceReason="451", **soft
            ),
            factories.contact(owner, "recent@x.org", bounceCount=2, lastBounceAt=recent, **soft),
            factories.contact(owner, "no-count@x.org", lastBounceAt=old, **soft),
            factories.contact(owner, "five@x.org", bounceCount=5, lastBounceAt=old, **soft),
            factories.contact(owner, "no-date@x.org", bounceCount=1, **soft),
            factories.contact(
                owner,
                "hard@x.org",
                bounceCount=2,
                lastBounceAt=old,
                emailStatus="bounced_permanent",
            ),
        ]
    )

    result = run_cleanup(settings, store, clock)

    assert result.stats["resetTemporaryBounces"] == 1
    reset = store.db["contacts"].find_one({"email": "reset@x.org"})
    assert reset is not None
    assert (reset["bounceCount"], reset["emailStatus"]) == (0, "active")
    assert "bounceReason" not in reset
    untouched = store.db["contacts"].find_one({"email": "recent@x.org"})
    assert untouched is not None and untouched["emailStatus"] == "bounced_temporary"


def test_contacts_with_five_bounces_still_active_are_deactivated(
    settings: Settings, store: Store, clock: FrozenClock
) -> None:
    owner = factories.user()["_id"]
    store.db["contacts"].insert_many(
        [
            factories.contact(
                owner, "default-active@x.org", bounceCount=5
            ),  # isActive missing = true
            factories.contact(owner, "active@x.org", bounceCount=7, isActive=True, status="active"),
            factories.contact(owner, "already@x.org", bounceCount=6, isActive=False),
            factories.contact(owner, "four@x.org", bounceCount=4),
        ]
    )

    result = run_cleanup(settings, store, clock)

    assert result.stats["deactivatedContacts"] == 2
    for email in ("default-active@x.org", "active@x.org"):
        doc = store.db["contacts"].find_one({"email": email})
        assert doc is not None
        assert (doc["isActive"], doc["status"], doc["emailStatus"]) == (
            False,
            "bounced",
            "bounced_permanent",
        )
    four = store.db["contacts"].find_one({"email": "four@x.org"})
    assert four is not None and "isActive" not in four


def test_the_scheduler_history_is_pruned_by_age(
    settings: Settings, store: Store, clock: FrozenClock
) -> None:
    now = clock.now()
    history_age = timedelta(days=settings.history_retention_days)
    metrics_age = timedelta(hours=settings.metrics_retention_hours)
    store.db["scheduler_metrics"].insert_many(
        [{"recordedAt": now - metrics_age - DAY}, {"recordedAt": now - metrics_age + DAY}]
    )
    store.db["scheduler_health"].insert_many(
        [{"checkedAt": now - history_age - DAY}, {"checkedAt": now}]
    )
    store.db["scheduler_outbox"].insert_many(
        [
            {"_id": "a:invitation", "state": "sent", "updatedAt": now - history_age - DAY},
            {"_id": "b:invitation", "state": "failed", "updatedAt": now - history_age - DAY},
            {"_id": "c:invitation", "state": "sent", "updatedAt": now},
        ]
    )
    store.db["scheduler_jobs"].insert_many(
        [
            {
                "_id": "old",
                "type": "cleanup",
                "status": "success",
                "startedAt": now - history_age - DAY,
            },
            {"_id": "new", "type": "cleanup", "status": "success", "startedAt": now - DAY},
        ]
    )

    result = run_cleanup(settings, store, clock)

    assert (result.stats["prunedMetrics"], result.stats["prunedHealthChecks"]) == (1, 1)
    assert result.stats["prunedJobs"] == 1
    assert result.stats["prunedOutbox"] == 1  # a failed entry stays: its message is still pending
    assert store.jobs.get("old") is None and store.jobs.get("new") is not None


def test_runs_stuck_in_running_without_a_live_lease_are_marked_abandoned(
    settings: Settings, store: Store, clock: FrozenClock
) -> None:
    store.db["scheduler_jobs"].insert_one(
        {
            "_id": "dead-run",
            "type": "reminders",
            "status": "running",
            "startedAt": clock.now() - DAY,
        }
    )

    result = run_cleanup(settings, store, clock)

    assert result.stats["abandonedJobs"] == 1
    dead = store.jobs.get("dead-run")
    assert dead is not None and dead["status"] == "abandoned"
    own = store.jobs.get(result.run_id)
    assert own is not None and own["status"] == "success"


def test_dry_run_counts_and_changes_nothing(
    settings: Settings, store: Store, clock: FrozenClock
) -> None:
    add_invitations(
        store, clock.now(), {"a@x.org": {"status": "sent"}, "b@x.org": {"status": "opened"}}
    )
    store.db["contacts"].insert_one(
        factories.contact(factories.user()["_id"], "c@x.org", bounceCount=9)
    )

    result = run_cleanup(settings, store, clock, dry_run=True)

    assert result.stats["expiredInvitations"] == 2
    assert result.stats["deactivatedContacts"] == 1
    assert "none made" in result.message
    assert statuses(store) == {"a@x.org": "sent", "b@x.org": "opened"}
    contact = store.db["contacts"].find_one({"email": "c@x.org"})
    assert contact is not None and "isActive" not in contact


def test_work_is_done_in_bounded_batches_and_a_rerun_changes_nothing(
    mongodb_uri: str, clock: FrozenClock
) -> None:
    settings = make_settings(mongodb_uri, invitation_batch_size=2)
    store = connect(settings)
    add_invitations(store, clock.now(), {f"p{i}@x.org": {"status": "sent"} for i in range(5)})

    first = run_cleanup(settings, store, clock)
    second = run_cleanup(settings, store, clock)

    assert first.stats["expiredInvitations"] == 5
    assert second.stats["expiredInvitations"] == 0
    assert set(statuses(store).values()) == {"expired"}


def test_sigterm_mid_cleanup_records_interrupted_and_a_rerun_completes(
    mongodb_uri: str, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings(mongodb_uri, invitation_batch_size=2)
    store = connect(settings)
    add_invitations(store, clock.now(), {f"p{i}@x.org": {"status": "sent"} for i in range(6)})
    real_expire_batch = InvitationRepository.expire_batch
    calls = 0

    def expire_then_get_terminated(self: InvitationRepository, now: datetime, limit: int) -> int:
        nonlocal calls
        calls += 1
        changed = real_expire_batch(self, now, limit)
        if calls == 1:
            os.kill(os.getpid(), signal.SIGTERM)  # systemd stopping the unit mid-run
        return changed

    monkeypatch.setattr(InvitationRepository, "expire_batch", expire_then_get_terminated)
    interrupted = run_cleanup(settings, store, clock)

    assert (interrupted.status, interrupted.exit_code) == ("interrupted", ExitCode.SIGTERM)
    assert interrupted.stats["expiredInvitations"] == 2
    record = store.jobs.get(interrupted.run_id)
    assert record is not None and record["status"] == "interrupted"

    monkeypatch.setattr(InvitationRepository, "expire_batch", real_expire_batch)
    rerun = run_cleanup(settings, store, clock)
    assert rerun.status == "success"
    assert rerun.stats["expiredInvitations"] == 4
    assert set(statuses(store).values()) == {"expired"}


def test_an_invitation_without_expires_at_expires_60_days_after_creation(
    settings: Settings, store: Store, clock: FrozenClock
) -> None:
    now = clock.now()
    add_invitations(
        store,
        now,
        {
            "old@x.org": {"status": "sent", "expiresAt": None, "createdAt": now - 61 * DAY},
            "young@x.org": {"status": "sent", "expiresAt": None, "createdAt": now - 59 * DAY},
            "tracked@x.org": {
                "status": "sent",
                "expiresAt": None,
                "tracking": {"createdAt": now - 61 * DAY},
            },
        },
    )
    result = run_cleanup(settings, store, clock)
    assert result.stats["expiredInvitations"] == 2
    assert statuses(store) == {
        "old@x.org": "expired",
        "young@x.org": "sent",
        "tracked@x.org": "expired",
    }


def test_a_soft_bounce_without_a_bounce_date_uses_the_last_update(
    settings: Settings, store: Store, clock: FrozenClock
) -> None:
    owner = factories.user()["_id"]
    soft = {"emailStatus": "bounced_temporary", "bounceCount": 1}
    store.db["contacts"].insert_many(
        [
            factories.contact(owner, "stale@x.org", updatedAt=clock.now() - 40 * DAY, **soft),
            factories.contact(owner, "fresh@x.org", updatedAt=clock.now() - DAY, **soft),
        ]
    )
    result = run_cleanup(settings, store, clock)
    assert result.stats["resetTemporaryBounces"] == 1
    stale = store.db["contacts"].find_one({"email": "stale@x.org"})
    assert stale is not None and stale["emailStatus"] == "active"


def test_cycle_markers_of_this_month_and_the_last_outlive_a_short_history_retention(
    mongodb_uri: str, clock: FrozenClock
) -> None:
    # A pruned marker would let the month's cycle count again: with a history
    # kept 7 days, markers stay 62 days, then go.
    settings = make_settings(mongodb_uri, history_retention_days=7)
    store = connect(settings)
    now = clock.now()
    store.db["scheduler_cycles"].insert_many(
        [
            {"_id": "u1:recent", "completedAt": now - timedelta(days=10)},
            {"_id": "u1:last-month", "completedAt": now - timedelta(days=40)},
            {"_id": "u1:old", "completedAt": now - timedelta(days=70)},
            {"_id": "switch-over", "at": now - timedelta(days=400)},
        ]
    )

    run_cleanup(settings, store, clock)

    kept = {doc["_id"] for doc in store.db["scheduler_cycles"].find()}
    assert kept == {"u1:recent", "u1:last-month", "switch-over"}

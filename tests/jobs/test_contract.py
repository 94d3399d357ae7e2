"""Every document the jobs leave in the app's collections is one the app's own
models accept (tests/contract.py: data-model.md as checks), on both backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from bson import ObjectId

from formafriend_scheduler.clock import FrozenClock
from formafriend_scheduler.eligibility import Month
from formafriend_scheduler.hooks.events import EventBus
from formafriend_scheduler.jobs.cleanup import CleanupJob
from formafriend_scheduler.jobs.reminders import ReminderOptions, RemindersJob
from formafriend_scheduler.lifecycle.runner import Runner
from formafriend_scheduler.seed import SeedPlan, seed
from formafriend_scheduler.store import Store, connect
from tests import contract
from tests.jobs.monthly_helpers import (
    JANUARY,
    REMINDERS_AT_ANY_HOUR,
    monthly_settings,
    run_monthly,
)
from tests.smtpserver import SmtpServer

# Late enough in the month that every seeded user's moment (days 1-28, in
# seven timezones) has passed, early enough for reminders to fall in it.
JANUARY_RUN = datetime(2027, 1, 29, 12, 0, tzinfo=UTC)
FEBRUARY_RUN = datetime(2027, 2, 28, 12, 0, tzinfo=UTC)


def app_answers(store: Store, contact: dict[str, Any], now: datetime) -> None:
    """What the app does when a contact submits the form (Contact.updateTracking)."""
    current = store.db["contacts"].find_one({"_id": contact["_id"]})
    assert current is not None
    tracking = current["tracking"]
    responses = tracking.get("responsesReceived", 0) + 1
    rate = contract.app_response_rate(responses, tracking["invitationsSent"])
    store.db["contacts"].update_one(
        {"_id": contact["_id"]},
        {"$set": {"tracking.responsesReceived": responses, "tracking.responseRate": rate,
                  "updatedAt": now}},
    )  # fmt: skip
    store.db["invitations"].update_one(
        {"toEmail": contact["email"], "fromUserId": contact["ownerId"], "status": "sent"},
        {"$set": {"status": "submitted", "tracking.submittedAt": now,
                  "submissionId": ObjectId(), "updatedAt": now}},
    )  # fmt: skip


def test_seed_then_every_job_leaves_only_documents_the_app_accepts(
    mongodb_uri: str, smtp_server: SmtpServer
) -> None:
    settings = monthly_settings(mongodb_uri, smtp_server.url, **REMINDERS_AT_ANY_HOUR)
    store = connect(settings)
    seed(store, SeedPlan(users=8, contacts_per_user=5), JANUARY_RUN - timedelta(days=40))
    store.indexes.ensure()
    assert contract.violations(store.db) == []  # the sample data itself
    eligible = list(store.db["contacts"].find({"status": {"$in": ["active", "pending"]},
                                               "isActive": True, "optedOut": False,
                                               "emailStatus": "active"}))  # fmt: skip
    bouncing, answering = eligible[0], eligible[1]
    smtp_server.refuse_always(bouncing["email"], "550 5.1.1 No such user")
    clock = FrozenClock(JANUARY_RUN)

    def jobs_ran(title: str) -> None:
        assert contract.violations(store.db) == [], title

    january = run_monthly(settings, store, clock)
    assert january.stats["sentInvitations"] > 20 and january.stats["bouncedInvitations"] == 1
    jobs_ran("monthly-invitations, with a hard bounce")

    clock.advance(timedelta(hours=2))
    app_answers(store, answering, clock.now())
    jobs_ran("the app recorded an answer")

    runner = Runner(settings, store, clock, EventBus(clock), check_clock_skew=False)
    clock.advance(timedelta(days=3, hours=1))
    first = runner.run(RemindersJob(ReminderOptions(workers=0)), {})
    assert first.stats["firstRemindersSent"] > 0
    jobs_ran("first reminders")
    clock.advance(timedelta(days=4))
    second = runner.run(RemindersJob(ReminderOptions(workers=0)), {})
    assert second.stats["secondRemindersSent"] > 0
    jobs_ran("second reminders")

    clock.set(FEBRUARY_RUN)
    run_monthly(settings, store, clock, month=Month(2027, 2))
    jobs_ran("a second month")
    answered = store.db["contacts"].find_one({"_id": answering["_id"]})
    assert answered is not None
    assert (answered["tracking"]["invitationsSent"], answered["tracking"]["responsesReceived"],
            answered["tracking"]["responseRate"]) == (2, 1, 50)  # fmt: skip

    clock.advance(timedelta(days=70))
    Runner(settings, store, clock, EventBus(clock)).run(CleanupJob(), {})
    assert store.db["invitations"].count_documents({"status": "expired"}) > 0
    jobs_ran("cleanup")
    assert store.db["invitations"].count_documents({"month": str(JANUARY)}) > 0


def _user(**fields: Any) -> dict[str, Any]:
    return {"_id": ObjectId(), "username": "alice", "email": "a@x.org", **fields}


def _contact(**fields: Any) -> dict[str, Any]:
    return {"_id": ObjectId(), "ownerId": ObjectId(), "email": "b@x.org", **fields}


def _invitation(**fields: Any) -> dict[str, Any]:
    base = {"fromUserId": ObjectId(), "toEmail": "b@x.org", "month": "2027-01", "token": "0" * 64}
    return {"_id": ObjectId(), **base, **fields}


STALE_RATE = {"invitationsSent": 2, "responsesReceived": 1, "responseRate": 100}


@pytest.mark.parametrize(
    ("collection", "doc", "broken"),
    [
        ("users", _user(), "password"),
        ("users", _user(password="hunter22"), "bcrypt"),
        ("contacts", _contact(tracking=STALE_RATE), "responseRate"),
        ("contacts", _contact(email="B@x.org"), "email"),
        ("invitations", _invitation(month="2027-1"), "month"),
        ("invitations", _invitation(status="delivered"), "status"),
        ("invitations", _invitation(toUserId=ObjectId()), "type"),
        ("invitations", _invitation(shortCode="abc123"), "shortCode"),
        (
            "invitations",
            _invitation(reminders=[{"type": "third", "sentAt": JANUARY_RUN}]),
            "reminders",
        ),
        ("invitations", _invitation(sentBy="scheduler"), "sentBy"),
    ],
)
def test_the_contract_check_catches_what_the_app_would_refuse_or_compute_otherwise(
    collection: str, doc: dict[str, Any], broken: str
) -> None:
    problems = contract.VALIDATORS[collection](doc)
    assert problems and all(broken in problem for problem in problems), problems


def test_the_response_rate_is_rounded_as_javascript_rounds() -> None:
    assert contract.app_response_rate(1, 8) == 13  # 12.5 -> 13 (Python's round gives 12)
    assert contract.app_response_rate(1, 3) == 33
    assert contract.app_response_rate(2, 3) == 67

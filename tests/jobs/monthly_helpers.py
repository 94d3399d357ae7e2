"""Running monthly-invitations in tests: settings for the test SMTP server, a
clock at the default send moment, and app-shaped users and contacts."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from bson import ObjectId

from formafriend_scheduler.clock import FrozenClock
from formafriend_scheduler.config import Settings
from formafriend_scheduler.eligibility import Month
from formafriend_scheduler.hooks.events import EventBus
from formafriend_scheduler.jobs.monthly import MonthlyInvitationsJob, MonthlyOptions
from formafriend_scheduler.lifecycle.runner import Runner, RunResult
from formafriend_scheduler.store import Store
from tests import factories
from tests.conftest import make_settings

JANUARY = Month(2027, 1)
SEND_MOMENT = datetime(2027, 1, 5, 17, 0, tzinfo=UTC)  # the 5th, 18:00 in Paris
# A run in a subprocess reads the real clock (or CI's faked one). With the send
# moment at the first instant of the month (the 1st at 00:00 in the schedule's
# timezone, which also decides the month), every user is due whenever such a
# run happens, on any date.
DUE_WHENEVER = {"SCHEDULER_MONTHLY_JOB_DAY": "1", "SCHEDULER_MONTHLY_JOB_HOUR": "0"}


# Quiet hours open all day but a minute, wherever the sender is: reminders
# go out at whatever instant a test picks.
REMINDERS_AT_ANY_HOUR = {"reminder_window_start": "00:00", "reminder_window_end": "23:59"}


def monthly_settings(mongodb_uri: str, smtp_url: str, **overrides: Any) -> Settings:
    base: dict[str, Any] = {
        "smtp_url": smtp_url,
        "app_base_url": "https://faf.example.org",
        "email_from_address": "noreply@form-a-friend.com",
    }
    return make_settings(mongodb_uri, **{**base, **overrides})


def run_monthly(settings: Settings, store: Store, clock: FrozenClock, **options: Any) -> RunResult:
    options.setdefault("workers", 0)
    options.setdefault("month", JANUARY)
    job = MonthlyInvitationsJob(MonthlyOptions(**options))
    runner = Runner(settings, store, clock, EventBus(clock), check_clock_skew=False)
    return runner.run(job, {})


def add_user(store: Store, **fields: Any) -> dict[str, Any]:
    doc = factories.user(**fields)
    store.db["users"].insert_one(doc)
    return doc


def add_contacts(
    store: Store, owner: dict[str, Any], *specs: str | dict[str, Any]
) -> list[ObjectId]:
    docs = []
    for spec in specs:
        fields = {"email": spec} if isinstance(spec, str) else dict(spec)
        docs.append(factories.contact(owner["_id"], fields.pop("email"), **fields))
    store.db["contacts"].insert_many(docs)
    return [doc["_id"] for doc in docs]


def invitations_of(store: Store, owner: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        doc["toEmail"]: doc for doc in store.db["invitations"].find({"fromUserId": owner["_id"]})
    }


def at_send_moment() -> FrozenClock:
    return FrozenClock(SEND_MOMENT)

"""Checks of the system's state rather than of one run: did each job succeed
in its expected period, and are e-mails stuck in the queue. Used by
health-check and at the end of every job, so an alert raised by one is
resolved by whichever looks next."""

from __future__ import annotations

from datetime import datetime, timedelta

from formafriend_scheduler.clock import to_utc
from formafriend_scheduler.config import Settings
from formafriend_scheduler.eligibility import Month
from formafriend_scheduler.errors import HealthCode
from formafriend_scheduler.jobs.health_types import Check
from formafriend_scheduler.store import Store

RAN = ("success", "partial")
# How long each job may go without a run that did its work.
EXPECTED: dict[str, timedelta] = {
    "reminders": timedelta(hours=3),  # hourly
    "cleanup": timedelta(days=2),  # daily
}


def monthly_deadline(settings: Settings, now: datetime) -> tuple[datetime, datetime] | None:
    """(this cycle's default send moment, the end of the day after it), when
    that day has passed: by then the monthly cycle must have run."""
    zone = settings.zone
    month = Month.containing(now, zone)
    day = settings.monthly_job_day
    moment = datetime(month.year, month.month, day, settings.monthly_job_hour, tzinfo=zone)
    deadline = datetime(month.year, month.month, day, tzinfo=zone) + timedelta(days=2)
    if now < deadline:
        return None
    return to_utc(moment), to_utc(deadline)


def check_stale_success(store: Store, settings: Settings, now: datetime) -> Check:
    first_use = store.jobs.first_started()
    stale: list[str] = []
    details: dict[str, object] = {}
    for job_type, period in EXPECTED.items():
        last = store.jobs.last_of_type(job_type, statuses=RAN, include_dry_runs=False)
        last_at = to_utc(last["startedAt"]) if last else None
        details[job_type] = last_at
        in_use_long_enough = first_use is not None and now - to_utc(first_use) >= period
        never = last_at is None and in_use_long_enough
        if never or (last_at is not None and now - last_at > period):
            stale.append(f"{job_type} has not run successfully for over {_age(period)}")
    window = monthly_deadline(settings, now)
    # Only a cycle the scheduler was already installed for can be missed.
    if window is not None and first_use is not None and to_utc(first_use) <= window[0]:
        moment, _ = window
        last = store.jobs.last_of_type("monthly-invitations", statuses=RAN, include_dry_runs=False)
        last_at = to_utc(last["startedAt"]) if last else None
        details["monthly-invitations"] = last_at
        if last_at is None or last_at < moment:
            stale.append(f"no successful monthly cycle since {moment:%Y-%m-%d %H:%M}Z")
    if any("monthly" in message for message in stale):
        return Check("stale-success", HealthCode.CRITICAL, "; ".join(stale), details)
    if stale:
        return Check("stale-success", HealthCode.WARNING, "; ".join(stale), details)
    return Check(
        "stale-success", HealthCode.OK, "every job ran within its expected period", details
    )


def check_queued_backlog(store: Store, settings: Settings, now: datetime) -> Check:
    hours = settings.queued_alert_hours
    count, oldest = store.invitations.queued_backlog(now - timedelta(hours=hours))
    details = {"stuck": count, "oldestCreatedAt": oldest, "thresholdHours": hours}
    if count:
        age = f", the oldest {_age(now - to_utc(oldest))} old" if oldest else ""
        return Check(
            "queued-backlog",
            HealthCode.WARNING,
            f"{count} invitation(s) queued for over {hours:g} h{age} (e-mails stuck?)",
            details,
        )
    return Check(
        "queued-backlog", HealthCode.OK, f"no invitation queued for over {hours:g} h", details
    )


def _age(delta: timedelta) -> str:
    hours = delta.total_seconds() / 3600
    return f"{hours:.0f} h" if hours < 48 else f"{hours / 24:.0f} days"

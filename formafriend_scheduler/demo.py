"""The whole monthly cycle on sample data, with simulated days: what the
`demo` command shows a newcomer, on an in-process database by default.

Time is a FrozenClock: the run starts just after every user's send moment
of the current month, then jumps to J+3 and J+7 for the reminders.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from formafriend_scheduler.clock import FrozenClock, SystemClock
from formafriend_scheduler.config import Settings
from formafriend_scheduler.eligibility import Month, send_schedule
from formafriend_scheduler.errors import DatabaseNotEmpty
from formafriend_scheduler.hooks.events import ALERTS_RESOLVED, ALERTS_TRIGGERED, Event, EventBus
from formafriend_scheduler.jobs.cleanup import CleanupJob
from formafriend_scheduler.jobs.health import run_health_check
from formafriend_scheduler.jobs.mailing import defaults_of
from formafriend_scheduler.jobs.monthly import MonthlyInvitationsJob, MonthlyOptions
from formafriend_scheduler.jobs.reminders import ReminderOptions, RemindersJob
from formafriend_scheduler.lifecycle.runner import Job, Runner
from formafriend_scheduler.reporting import RunReporter
from formafriend_scheduler.seed import SeedPlan, seed
from formafriend_scheduler.store import Store

log = logging.getLogger(__name__)
DEMO_USERS = 36
DEMO_CONTACTS = 6


@dataclass
class DemoStep:
    title: str
    at: datetime
    summary: str
    figures: dict[str, Any] = field(default_factory=dict)
    job_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "at": self.at,
            "jobId": self.job_id,
            "summary": self.summary,
            "figures": self.figures,
        }


class CollectingAlerts:
    """Keeps the alert messages raised and the alert keys resolved."""

    def __init__(self) -> None:
        self.raised: dict[str, str] = {}  # key -> message
        self.resolved: set[str] = set()

    def handle(self, event: Event) -> None:
        for alert in event.payload.get("alerts") or []:
            if event.name == ALERTS_TRIGGERED:
                self.raised[str(alert.get("key"))] = str(alert.get("message"))
            elif event.name == ALERTS_RESOLVED:
                self.resolved.add(str(alert.get("key")))

    def summary(self) -> str:
        return "; ".join(
            f"{message} ({'resolved' if key in self.resolved else 'still active'})"
            for key, message in sorted(self.raised.items())
        )


def start_moment(real_now: datetime, settings: Settings) -> tuple[Month, datetime]:
    """The current month, and its default send moment (SCHEDULER_MONTHLY_JOB_DAY
    at SCHEDULER_MONTHLY_JOB_HOUR:00 in SCHEDULER_TIMEZONE: the 5th at 18:00 in
    Paris): the moment most users go out, so every step of the demo happens
    in the month it sends. Users who picked a later day go out on their day."""
    month = Month.containing(real_now, settings.zone)
    # The schedule of a user without preferences: the run's own rule.
    return month, send_schedule({}, defaults_of(settings)).moment(month)


def run_demo(
    settings: Settings,
    store: Store,
    outbox: Path,
    on_step: Callable[[DemoStep], None],
    *,
    force: bool = False,
    users: int = DEMO_USERS,
    contacts_per_user: int = DEMO_CONTACTS,
) -> list[DemoStep]:
    if not force and not store.is_empty():
        raise DatabaseNotEmpty(
            f"the database {store.database_name} already holds users",
            hint="pass --force to run the demo there anyway (it adds 36 more sample users)",
        )
    month, start = start_moment(SystemClock().now(), settings)
    clock = FrozenClock(start)
    # No log sink: the steps tell the story, and the alerts get a step of their own.
    alerts = CollectingAlerts()
    events = EventBus(clock, [alerts])
    runner = Runner(
        settings,
        store,
        clock,
        events,
        check_clock_skew=False,  # the demo's clock is simulated on purpose
        reporter=RunReporter(settings, store, clock, events),
    )
    steps: list[DemoStep] = []

    def step(title: str, summary: str, job_id: str | None = None, **figures: Any) -> None:
        done = DemoStep(title, clock.now(), summary, figures, job_id)
        steps.append(done)
        on_step(done)

    def run(title: str, job: Job) -> None:
        result = runner.run(job, {})
        step(title, f"{result.status}: {result.message}", result.run_id, **result.stats)

    def monthly() -> MonthlyInvitationsJob:
        # As cron runs it: the month is the one the simulated clock is in.
        return MonthlyInvitationsJob(MonthlyOptions(workers=0))

    def cron(title: str, cleanup: bool = False) -> None:
        """What the crontab runs at this simulated moment (hourly, and cleanup daily)."""
        run(f"{title}: monthly invitations", monthly())
        run(f"{title}: reminders", RemindersJob(ReminderOptions(workers=0)))
        if cleanup:
            run(f"{title}: cleanup", CleanupJob())

    report = seed(
        store,
        SeedPlan(users=users, contacts_per_user=contacts_per_user, seed=2027),
        start - timedelta(days=60),
    )
    store.indexes.ensure()
    step(
        "Sample data",
        f"{report.users} users in 7 timezones, {report.contacts} contacts "
        f"({report.contacts - report.eligible_contacts} that cannot be invited: opted out, "
        "bounced, complained, unsubscribed, blocked, inactive)",
        users=report.users,
        contacts=report.contacts,
        eligibleContacts=report.eligible_contacts,
    )
    run(f"Monthly invitations for {month.label}, on the default send day", monthly())
    clock.advance(timedelta(hours=1))
    run("The same, an hour later: nothing is sent twice", monthly())
    run("Daily cleanup", CleanupJob())
    clock.advance(timedelta(days=3))
    cron("J+3: first reminders (09:00-20:00 for the sender), users whose day has come")
    clock.advance(timedelta(hours=8))
    cron("J+3, 8 hours later: the other timezones", cleanup=True)
    clock.advance(timedelta(days=4) - timedelta(hours=8))
    cron("J+7: second reminders")
    clock.advance(timedelta(hours=8))
    cron("J+7, 8 hours later", cleanup=True)

    if alerts.raised:
        step(
            "Alerts",
            alerts.summary() + ". The simulation jumps days between steps, skipping the "
            "hourly runs in between, and the stale-success rule notices the gap: in "
            "production it means a job that stopped running.",
            raised=len(alerts.raised),
            resolved=len(alerts.resolved),
        )
    health = run_health_check(settings, store, clock, events=events)
    worst = [check.summary for check in health.checks if check.code is health.code]
    step(
        "Health check",
        f"{health.status}" + ("" if health.code == 0 else f": {'; '.join(worst)}"),
        **{check.name: check.code.name for check in health.checks},
    )
    messages = sorted(outbox.glob("*.eml"))
    step(
        "E-mails written",
        f"{len(messages)} .eml files in {outbox}"
        + (f", for example {messages[0].name}" if messages else "")
        + ": open one in a mail client. `formafriend-scheduler preview invitation --open` "
        "shows a message in a browser (preview reminder-first, reminder-second; --tone fun).",
        files=len(messages),
    )
    return steps

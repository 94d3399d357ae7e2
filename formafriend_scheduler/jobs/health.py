"""health-check: is the scheduler able to do its work, and did it?

Each check returns a monitoring-plugin status; the report's status is the
worst of them. Reads only, plus one record in `scheduler_health`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import psutil

from formafriend_scheduler.alerts import Alert, AlertTracker
from formafriend_scheduler.clock import Clock, to_utc
from formafriend_scheduler.config import Settings
from formafriend_scheduler.errors import HealthCode, SchedulerError
from formafriend_scheduler.hooks.events import (
    JOB_COMPLETED,
    JOB_STARTED,
    EventBus,
)
from formafriend_scheduler.ids import new_run_id
from formafriend_scheduler.jobs.health_types import Check, HealthReport
from formafriend_scheduler.jobs.mail_checks import SmtpProbe, check_mail
from formafriend_scheduler.jobs.state_checks import check_queued_backlog, check_stale_success
from formafriend_scheduler.lifecycle.lock import stuck_runs
from formafriend_scheduler.local_alerts import FileAlertState
from formafriend_scheduler.mail.transports import probe_smtp
from formafriend_scheduler.store import Store
from formafriend_scheduler.store.indexes import ALL_INDEXES

log = logging.getLogger(__name__)
JOB_TYPE = "health-check"

SLOW_PING_MS = 1000
ERROR_RATE_WINDOW = timedelta(hours=24)
MONTHLY_MAX_AGE = timedelta(days=35)
HOST_MEMORY_CRITICAL = 0.95
FAILED_STATUSES = ("failed", "abandoned")


def check_mongodb(store: Store) -> Check:
    try:
        latency = store.ping()
    except SchedulerError as error:  # unreachable, refused login, bad URI...
        return Check("mongodb", HealthCode.CRITICAL, str(error))
    code = HealthCode.WARNING if latency >= SLOW_PING_MS else HealthCode.OK
    return Check(
        "mongodb", code, f"reachable, round trip {latency:.1f} ms", {"latencyMs": round(latency, 1)}
    )


def check_indexes(store: Store) -> Check:
    missing = [state.spec for state in store.indexes.check(ALL_INDEXES) if not state.present]
    if missing:
        dropped = [spec for spec in missing if spec.added_to_app]
        named = [
            spec.describe()
            + (" (not in the app's schemas: its Mongoose syncIndexes() drops it)"
               if spec.added_to_app else "")
            for spec in missing
        ]  # fmt: skip
        return Check(
            "indexes",
            HealthCode.WARNING,
            f"missing: {'; '.join(named)}; run `formafriend-scheduler init-db` to create "
            f"{'it' if len(missing) == 1 else 'them'} again",
            {
                "missing": [spec.describe() for spec in missing],
                "droppedBySyncIndexes": [spec.describe() for spec in dropped],
                "fix": "formafriend-scheduler init-db",
            },
        )
    return Check("indexes", HealthCode.OK, f"all {len(ALL_INDEXES)} required indexes present")


def check_locks(store: Store, now: datetime) -> Check:
    holders = store.locks.holders()
    overdue = [h for h in holders if h.expires_at <= now]
    stuck = stuck_runs(store.jobs.running(), holders, now)
    details = {
        "heldPastExpiry": [
            f"{h.job_type} by {h.run_id} (expired {h.expires_at:%Y-%m-%d %H:%M:%S}Z)"
            for h in overdue
        ],
        "stuckRuns": [str(record["_id"]) for record in stuck],
        "activeRuns": [h.run_id for h in holders if h.expires_at > now],
    }
    if overdue or stuck:
        return Check(
            "locks",
            HealthCode.WARNING,
            f"{len(overdue)} lock(s) held past expiry, {len(stuck)} run(s) stuck in running "
            "(a crashed run; the next run or `cleanup` recovers)",
            details,
        )
    return Check("locks", HealthCode.OK, f"{len(details['activeRuns'])} run(s) active", details)


def check_error_rate(store: Store, settings: Settings, now: datetime) -> Check:
    counts = store.jobs.count_by_status(since=now - ERROR_RATE_WINDOW)
    finished = sum(n for status, n in counts.items() if status not in ("running", "skipped"))
    failed = sum(counts[status] for status in FAILED_STATUSES)
    rate = failed / finished if finished else 0.0
    details = {
        "window": "24h",
        "finishedRuns": finished,
        "failedRuns": failed,
        "errorRate": round(rate, 4),
    }
    summary = f"{failed} of {finished} run(s) failed in 24 h ({rate:.1%})"
    if rate > settings.error_rate_threshold:
        threshold = f"SCHEDULER_ERROR_RATE_THRESHOLD {settings.error_rate_threshold:.0%}"
        return Check("error-rate", HealthCode.WARNING, f"{summary}, over {threshold}", details)
    return Check("error-rate", HealthCode.OK, summary, details)


def check_monthly(store: Store, now: datetime) -> Check:
    last = store.jobs.last_of_type("monthly-invitations", statuses=None)
    if last is None:
        return Check("monthly-run", HealthCode.OK, "no monthly run recorded yet")
    status = str(last.get("status"))
    started = to_utc(last["startedAt"])
    age = now - started
    details = {
        "jobId": last["_id"],
        "status": status,
        "startedAt": started,
        "ageHours": round(age.total_seconds() / 3600, 1),
    }
    summary = f"last run {last['_id']} {status}, {age.days} day(s) ago"
    if status in FAILED_STATUSES:
        return Check("monthly-run", HealthCode.CRITICAL, summary, details)
    if status in ("partial", "interrupted") or age > MONTHLY_MAX_AGE:
        return Check("monthly-run", HealthCode.WARNING, summary, details)
    return Check("monthly-run", HealthCode.OK, summary, details)


def check_host_memory(settings: Settings, read_memory: Callable[[], Any]) -> Check:
    memory = read_memory()
    used = memory.percent / 100
    details = {"usedPercent": round(memory.percent, 1), "totalMB": memory.total // (1024 * 1024)}
    summary = f"host memory {used:.0%} used"
    if used >= max(HOST_MEMORY_CRITICAL, settings.memory_alert_threshold):
        return Check("host-memory", HealthCode.CRITICAL, summary, details)
    if used >= settings.memory_alert_threshold:
        threshold = f"SCHEDULER_MEMORY_ALERT_THRESHOLD {settings.memory_alert_threshold:.0%}"
        return Check("host-memory", HealthCode.WARNING, f"{summary}, over {threshold}", details)
    return Check("host-memory", HealthCode.OK, summary, details)


def _guarded(name: str, check: Callable[[], Check]) -> Check:
    """A check that cannot complete reports UNKNOWN instead of failing the others."""
    try:
        return check()
    except (SchedulerError, OSError) as error:
        return Check(name, HealthCode.UNKNOWN, f"could not check: {error}")


def check_alert(check: Check) -> Alert:
    """A check that is not OK, as an alert of its own scope."""
    key = f"health:{check.name}"
    severity = {HealthCode.CRITICAL: "critical", HealthCode.UNKNOWN: "error"}.get(
        check.code, "warning"
    )
    return Alert(key, key, check.name, severity, check.summary)


def report_alerts(
    checks: list[Check],
    health_data: dict[str, Any],
    tracker: AlertTracker,
    offline: AlertTracker,
    database_up: bool,
) -> None:
    """Through the MongoDB-backed tracker (sent once, repeated at most every
    interval, resolved when cleared). While MongoDB is down, through the same
    rules over a local file; once it is back, what was raised offline and has
    cleared is resolved, and what still fires is handed over to MongoDB."""
    firing = [check_alert(check) for check in checks if check.code is not HealthCode.OK]
    scopes = [f"health:{check.name}" for check in checks]
    if not database_up:
        offline.report(firing, scopes, health_data)
        return
    firing_keys = {alert.key for alert in firing}
    offline.report([], [scope for scope in scopes if scope not in firing_keys], health_data)
    offline.hand_over(sorted(firing_keys))
    tracker.report(firing, scopes, health_data)


def run_health_check(
    settings: Settings,
    store: Store,
    clock: Clock,
    read_memory: Callable[[], Any] = psutil.virtual_memory,
    events: EventBus | None = None,
    smtp_probe: SmtpProbe = probe_smtp,
) -> HealthReport:
    started = clock.monotonic()
    now = clock.now()
    run_id = new_run_id(JOB_TYPE, now)
    if events is not None:  # for the dead-man pings of the health check itself
        events.emit(JOB_STARTED, jobId=run_id, type=JOB_TYPE)
    checks = [check_mongodb(store)]
    database_up = checks[0].code is not HealthCode.CRITICAL
    database_checks: list[tuple[str, Callable[[], Check]]] = [
        ("indexes", lambda: check_indexes(store)),
        ("locks", lambda: check_locks(store, now)),
        ("error-rate", lambda: check_error_rate(store, settings, now)),
        ("monthly-run", lambda: check_monthly(store, now)),
        ("stale-success", lambda: check_stale_success(store, settings, now)),
        ("queued-backlog", lambda: check_queued_backlog(store, settings, now)),
    ]
    if database_up:
        checks += [_guarded(name, check) for name, check in database_checks]
    else:
        checks += [
            Check(name, HealthCode.UNKNOWN, "skipped: MongoDB unreachable")
            for name, _ in database_checks
        ]
    checks.append(_guarded("mail", lambda: check_mail(settings, smtp_probe)))
    checks.append(_guarded("host-memory", lambda: check_host_memory(settings, read_memory)))
    report = HealthReport(now, checks, round((clock.monotonic() - started) * 1000))
    if database_up:
        try:
            store.health.insert(report.as_dict())
        except SchedulerError as error:
            log.warning("could not record the health check: %s", error)
    if events is not None:
        offline_state = FileAlertState(settings.local_state_dir)
        try:
            report_alerts(
                checks,
                report.as_dict(),
                AlertTracker(store.alerts, settings, clock, events),
                AlertTracker(offline_state, settings, clock, events),
                database_up,
            )
        except (SchedulerError, OSError) as error:
            log.warning("could not update the alerts: %s", error)
        events.emit(
            JOB_COMPLETED,
            jobId=run_id,
            type=JOB_TYPE,
            status=report.status,
            duration=report.duration_ms,
            exitCode=int(report.code),
        )
    return report

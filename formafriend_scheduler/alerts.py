"""Alert rules, and the tracker that sends each alert when it starts, again
at most every SCHEDULER_ALERT_REPEAT_MINUTES while it lasts, and a resolved
event when it clears.

Rules about one run are evaluated at its end (scope `run:<job>`); rules about
the state of the system (stale jobs, a stuck queue, health checks) by
health-check and at the end of every job (scope `health:<check>`). An
evaluation only resolves alerts in the scopes it evaluated.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from formafriend_scheduler.clock import Clock
from formafriend_scheduler.config import Settings
from formafriend_scheduler.figures import figures_of
from formafriend_scheduler.hooks.events import ALERTS_RESOLVED, ALERTS_TRIGGERED, EventBus
from formafriend_scheduler.store import Store

MB = 1024 * 1024
DURATION_SHARE = 0.75  # the seed's jobDuration threshold


@dataclass(frozen=True)
class Alert:
    key: str  # the condition: one alert state per key
    scope: str  # what evaluation may resolve it
    type: str
    severity: str  # warning | error | critical
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "scope": self.scope,
            "type": self.type,
            "severity": self.severity,
            "message": self.message,
        }


def run_scope(job_type: str) -> str:
    return f"run:{job_type}"


def run_alert(job_type: str, rule: str, severity: str, message: str) -> Alert:
    return Alert(f"run:{job_type}:{rule}", run_scope(job_type), rule, severity, message)


def run_alerts(
    settings: Settings,
    job_type: str,
    stats: dict[str, Any],
    duration_seconds: float,
    peak_memory_bytes: int,
) -> list[Alert]:
    """The rules about one finished run."""
    alerts = []
    figures = figures_of(job_type, stats)
    if figures.error_rate > settings.error_rate_threshold:
        alerts.append(
            run_alert(
                job_type,
                "error-rate",
                "error",
                f"{job_type}: {figures.failed} of {figures.delivered + figures.failed} "
                f"items failed ({figures.error_rate:.1%}, "
                f"over {settings.error_rate_threshold:.0%})",
            )
        )
    limit = settings.max_memory_mb * MB
    if peak_memory_bytes >= settings.memory_alert_threshold * limit:
        severity = "critical" if peak_memory_bytes > limit else "warning"
        alerts.append(
            run_alert(
                job_type,
                "memory",
                severity,
                f"{job_type}: peak memory {peak_memory_bytes / MB:.0f} MB, "
                f"{peak_memory_bytes / limit:.0%} of SCHEDULER_MAX_MEMORY_MB "
                f"({settings.max_memory_mb})",
            )
        )
    if duration_seconds >= DURATION_SHARE * settings.max_job_duration_hours * 3600:
        alerts.append(duration_alert(settings, job_type, duration_seconds))
    incidents = int(stats.get("workerTimeouts") or 0) + int(stats.get("workerCrashes") or 0)
    if incidents:
        alerts.append(
            run_alert(
                job_type,
                "workers",
                "error",
                f"{job_type}: {stats.get('workerTimeouts') or 0} batch timeout(s), "
                f"{stats.get('workerCrashes') or 0} worker crash(es)",
            )
        )
    return alerts


def duration_alert(settings: Settings, job_type: str, elapsed: float) -> Alert:
    limit = settings.max_job_duration_hours * 3600
    return run_alert(
        job_type,
        "duration",
        "warning",
        f"{job_type} ran {elapsed:.0f} s, over 75 % of "
        f"SCHEDULER_MAX_JOB_DURATION_HOURS ({limit:.0f} s)",
    )


class AlertTracker:
    def __init__(self, store: Store, settings: Settings, clock: Clock, events: EventBus) -> None:
        self._store = store
        self._repeat = timedelta(minutes=settings.alert_repeat_minutes)
        self._clock = clock
        self._events = events

    def report(
        self, firing: list[Alert], scopes: list[str], health_data: dict[str, Any]
    ) -> tuple[list[Alert], list[dict[str, Any]]]:
        """Send what is new or due again; resolve what these scopes no longer see."""
        now = self._clock.now()
        to_send = [
            alert
            for alert in firing
            if self._store.alerts.fire(alert.as_dict(), now, now - self._repeat)
        ]
        keys = {alert.key for alert in firing}
        cleared = [doc for doc in self._store.alerts.active(scopes) if doc["_id"] not in keys]
        self._store.alerts.resolve([doc["_id"] for doc in cleared], now)
        resolved = [
            {name: doc.get(name) for name in ("key", "scope", "type", "severity", "message")}
            for doc in cleared
        ]
        if to_send:
            self._events.emit(
                ALERTS_TRIGGERED, alerts=[a.as_dict() for a in to_send], healthData=health_data
            )
        if resolved:
            self._events.emit(ALERTS_RESOLVED, alerts=resolved, healthData=health_data)
        return to_send, resolved

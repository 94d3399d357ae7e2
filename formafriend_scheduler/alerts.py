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
from datetime import datetime, timedelta
from typing import Any, Protocol

from formafriend_scheduler.clock import Clock
from formafriend_scheduler.config import Settings
from formafriend_scheduler.figures import figures_of
from formafriend_scheduler.hooks.events import ALERTS_RESOLVED, ALERTS_TRIGGERED, EventBus

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


RUN_RULES = ("error-rate", "memory", "duration", "workers")


def run_scope(job_type: str, rule: str) -> str:
    """Each run rule is its own scope: a run resolves only what it evaluated."""
    return f"run:{job_type}:{rule}"


def run_alert(job_type: str, rule: str, severity: str, message: str) -> Alert:
    return Alert(run_scope(job_type, rule), run_scope(job_type, rule), rule, severity, message)


@dataclass(frozen=True)
class RunEvaluation:
    alerts: list[Alert]
    scopes: list[str]  # the rules evaluated, which may resolve earlier alerts


def run_alerts(
    settings: Settings,
    job_type: str,
    stats: dict[str, Any],
    duration_seconds: float,
    peak_memory_bytes: int,
    *,
    dry_run: bool = False,
) -> RunEvaluation:
    """The rules about one finished run.

    The error rate is judged only when the run attempted deliveries: a dry run
    or a run with nothing due says nothing about whether e-mail works again.
    """
    alerts = []
    rules = list(RUN_RULES)
    figures = figures_of(job_type, stats)
    attempted = figures.delivered + figures.failed
    if dry_run or attempted == 0:
        rules.remove("error-rate")
    elif figures.error_rate > settings.error_rate_threshold:
        alerts.append(
            run_alert(
                job_type,
                "error-rate",
                "error",
                f"{job_type}: {figures.failed} of {attempted} "
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
    return RunEvaluation(alerts, [run_scope(job_type, rule) for rule in rules])


def duration_alert(settings: Settings, job_type: str, elapsed: float) -> Alert:
    limit = settings.max_job_duration_hours * 3600
    return run_alert(
        job_type,
        "duration",
        "warning",
        f"{job_type} ran {elapsed:.0f} s, over 75 % of "
        f"SCHEDULER_MAX_JOB_DURATION_HOURS ({limit:.0f} s)",
    )


class AlertState(Protocol):
    """Where the tracker keeps which alerts are active and when each was sent:
    `scheduler_alerts` (store.alerts), or a local file while MongoDB is down."""

    def fire(self, alert: dict[str, Any], now: datetime, resend_before: datetime) -> bool: ...

    def active(self, scopes: list[str]) -> list[dict[str, Any]]: ...

    def resolve(self, keys: list[str], now: datetime) -> int: ...


class AlertTracker:
    def __init__(
        self, state: AlertState, settings: Settings, clock: Clock, events: EventBus
    ) -> None:
        self._state = state
        self._repeat = timedelta(minutes=settings.alert_repeat_minutes)
        self._clock = clock
        self._events = events

    def report(
        self, firing: list[Alert], scopes: list[str], health_data: dict[str, Any]
    ) -> tuple[list[Alert], list[dict[str, Any]]]:
        """Send what is new or due again; resolve what these scopes no longer see."""
        now = self._clock.now()
        to_send = [
            alert for alert in firing if self._state.fire(alert.as_dict(), now, now - self._repeat)
        ]
        keys = {alert.key for alert in firing}
        cleared = [doc for doc in self._state.active(scopes) if doc["_id"] not in keys]
        self._state.resolve([doc["_id"] for doc in cleared], now)
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

    def hand_over(self, keys: list[str]) -> None:
        """Stop tracking `keys` here, without a resolved event: they still fire,
        and another tracker (MongoDB's, once it is back) takes them over."""
        self._state.resolve(keys, self._clock.now())

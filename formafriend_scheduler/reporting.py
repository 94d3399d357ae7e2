"""After each run (and each health check): the per-run metrics document and
totals, alert rules through the tracker, the Prometheus textfile. Nothing
here may fail a run: every failure is a logged warning."""

from __future__ import annotations

import logging
from typing import Any

from formafriend_scheduler.alerts import Alert, AlertTracker, run_alerts
from formafriend_scheduler.clock import Clock
from formafriend_scheduler.config import Settings
from formafriend_scheduler.errors import HealthCode, SchedulerError
from formafriend_scheduler.figures import figures_of
from formafriend_scheduler.hooks.events import ALERTS_TRIGGERED, EventBus
from formafriend_scheduler.hooks.prometheus import JobSnapshot, Snapshot, write_textfile
from formafriend_scheduler.ids import JOB_TYPES
from formafriend_scheduler.jobs.health import check_alert
from formafriend_scheduler.jobs.health_types import Check
from formafriend_scheduler.jobs.state_checks import check_queued_backlog, check_stale_success
from formafriend_scheduler.store import Store

log = logging.getLogger(__name__)
SUCCEEDED = ("success", "partial")
FINISHED = ("success", "partial", "failed", "interrupted", "abandoned", "skipped")


class RunReporter:
    def __init__(self, settings: Settings, store: Store, clock: Clock, events: EventBus) -> None:
        self._settings = settings
        self._store = store
        self._clock = clock
        self._events = events
        self._tracker = AlertTracker(store.alerts, settings, clock, events)

    def alert_now(self, alert: Alert, health_data: dict[str, Any]) -> None:
        """An alert raised during a run (duration, worker incident): through the
        tracker, so the end-of-run evaluation does not send it a second time."""
        try:
            self._tracker.report([alert], [], health_data)
        except SchedulerError as error:
            log.warning("could not track alert %s (%s): sending it untracked", alert.key, error)
            self._events.emit(ALERTS_TRIGGERED, alerts=[alert.as_dict()], healthData=health_data)

    def after_run(self, result: Any) -> None:
        """`result` is the runner's RunResult."""
        for step in (self._record, self._alerts, self._prometheus):
            try:
                step(result)
            except (SchedulerError, OSError) as error:
                log.warning("after %s: %s failed: %s", result.run_id, step.__name__, error)

    def after_health_check(self, code: int) -> None:
        try:
            self._prometheus(None, health_code=code)
        except (SchedulerError, OSError) as error:
            log.warning("could not write the Prometheus textfile: %s", error)

    def _record(self, result: Any) -> None:
        figures = figures_of(result.job_type, result.stats)
        duration = result.duration_seconds
        self._store.metrics.insert(
            {
                "recordedAt": self._clock.now(),
                "jobId": result.run_id,
                "type": result.job_type,
                "status": result.status,
                "exitCode": int(result.exit_code),
                "durationSeconds": round(duration, 3),
                "itemsProcessed": figures.processed,
                "sent": figures.delivered,
                "failed": figures.failed,
                "throughputPerSecond": round(figures.processed / duration, 2) if duration else 0.0,
                "peakMemoryBytes": result.peak_memory_bytes,
                "errorRate": round(figures.error_rate, 4),
            }
        )
        self._store.counters.add(
            result.job_type,
            {"sent": figures.delivered, "failed": figures.failed, f"runs.{result.status}": 1},
        )

    def _alerts(self, result: Any) -> None:
        evaluation = run_alerts(
            self._settings,
            result.job_type,
            result.stats,
            result.duration_seconds,
            result.peak_memory_bytes,
            dry_run=result.dry_run,
        )
        firing = list(evaluation.alerts)
        now = self._clock.now()
        state_checks: list[Check] = [
            check_stale_success(self._store, self._settings, now),
            check_queued_backlog(self._store, self._settings, now),
        ]
        firing += [check_alert(check) for check in state_checks if check.code is not HealthCode.OK]
        scopes = evaluation.scopes + [f"health:{check.name}" for check in state_checks]
        self._tracker.report(firing, scopes, {"jobId": result.run_id, **result.as_dict()})

    def _prometheus(self, result: Any, health_code: int | None = None) -> None:
        path = self._settings.prometheus_textfile
        if path is None:
            return
        counters = self._store.counters.all()
        jobs = {
            job: JobSnapshot(
                last=self._store.jobs.last_of_type(job, statuses=FINISHED),
                last_success=self._store.jobs.last_of_type(
                    job, statuses=SUCCEEDED, include_dry_runs=False
                ),
                counters=counters.get(job, {}),
            )
            for job in JOB_TYPES
        }
        if health_code is None:
            latest = self._store.health.latest()
            health_code = int(latest["code"]) if latest and "code" in latest else None
        write_textfile(path, Snapshot(jobs, health_code))

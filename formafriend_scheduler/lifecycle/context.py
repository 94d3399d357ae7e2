"""What a job sees of its run: settings, store, clock, stats, progress and
whether it should stop starting new work."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Literal

from formafriend_scheduler.alerts import Alert
from formafriend_scheduler.clock import Clock
from formafriend_scheduler.config import Settings
from formafriend_scheduler.hooks.events import ALERTS_TRIGGERED, EventBus
from formafriend_scheduler.lifecycle.lock import Lease
from formafriend_scheduler.store import Store

log = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int, str], None]  # done, total, phase
MAX_ERROR_SAMPLES = 20
PROGRESS_WRITE_INTERVAL = 1.0  # seconds between progress writes to the job record


class StopReason(Enum):
    SIGNAL = "signal"
    LEASE_LOST = "lease-lost"
    DURATION_LIMIT = "duration-limit"
    MEMORY_LIMIT = "memory-limit"
    DATABASE_UNAVAILABLE = "database-unavailable"  # a worker's batch could not reach MongoDB


STOP_PRECEDENCE = {
    StopReason.DURATION_LIMIT: 0,
    StopReason.MEMORY_LIMIT: 0,
    StopReason.DATABASE_UNAVAILABLE: 1,
    StopReason.LEASE_LOST: 1,
    StopReason.SIGNAL: 2,
}


@dataclass(frozen=True)
class JobOutcome:
    """What a job reports when it returns; the runner adds stop reasons."""

    status: Literal["success", "partial", "failed", "skipped"] = "success"
    message: str = ""


@dataclass
class StopRequest:
    reason: StopReason
    detail: str
    signum: int | None = None


@dataclass
class JobContext:
    run_id: str
    job_type: str
    settings: Settings
    store: Store
    clock: Clock
    events: EventBus
    lease: Lease
    options: dict[str, Any]
    record_progress: Callable[[dict[str, Any]], bool]
    on_progress: ProgressCallback | None = None
    raise_alert: Callable[[Alert], None] | None = None
    stats: dict[str, int] = field(default_factory=dict)
    error_samples: list[str] = field(default_factory=list)
    stop: StopRequest | None = None
    _started: float = field(default=0.0)
    _last_write: float = field(default=float("-inf"))

    def __post_init__(self) -> None:
        self._started = self.clock.monotonic()

    @property
    def dry_run(self) -> bool:
        return bool(self.options.get("dry_run"))

    @property
    def elapsed_seconds(self) -> float:
        return self.clock.monotonic() - self._started

    def request_stop(self, reason: StopReason, detail: str, signum: int | None = None) -> None:
        # The most pressing reason is the one recorded: an operator's signal,
        # then a lost lease, then a limit.
        if self.stop is None or STOP_PRECEDENCE[reason] > STOP_PRECEDENCE[self.stop.reason]:
            self.stop = StopRequest(reason, detail, signum)
            self.lease.mirror.stop()  # workers: no chunk of messages after the current one
            log.warning("%s: stopping after in-flight work (%s)", self.job_type, detail)

    def should_stop(self) -> bool:
        """Ask before starting each new piece of work."""
        if self.stop is None and not self.lease.is_valid():
            self.request_stop(StopReason.LEASE_LOST, self.lease.lost_reason)
        hours = self.settings.max_job_duration_hours
        if self.stop is None and self.elapsed_seconds >= hours * 3600:
            self.request_stop(
                StopReason.DURATION_LIMIT, f"reached SCHEDULER_MAX_JOB_DURATION_HOURS ({hours:g} h)"
            )
        return self.stop is not None

    def alert(self, alert: Alert) -> None:
        """An alert during the run (a worker incident, the duration threshold)."""
        if self.raise_alert is not None:
            self.raise_alert(alert)
        else:
            self.events.emit(
                ALERTS_TRIGGERED, alerts=[alert.as_dict()], healthData={"jobId": self.run_id}
            )

    def count(self, name: str, amount: int = 1) -> None:
        self.stats[name] = self.stats.get(name, 0) + amount

    def note_error(self, message: str) -> None:
        if len(self.error_samples) < MAX_ERROR_SAMPLES:
            self.error_samples.append(message)

    def progress(self, done: int, total: int, phase: str = "") -> None:
        """Report progress: to the terminal at once, to the job record at most once a second."""
        if self.on_progress is not None:
            self.on_progress(done, total, phase)
        moment = time.monotonic()  # throttling only, not business time
        if moment - self._last_write >= PROGRESS_WRITE_INTERVAL or done >= total:
            self._last_write = moment
            progress = {"done": done, "total": total, "updatedAt": self.clock.now()}
            if phase:
                progress["phase"] = phase
            fields = {"progress": progress}
            if not self.record_progress(fields):
                self.request_stop(StopReason.LEASE_LOST, "the job record was taken over")

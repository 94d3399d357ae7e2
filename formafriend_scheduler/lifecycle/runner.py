"""The run lifecycle every job shares.

take the lease -> insert the job record -> run the job (heartbeat, memory
sampler, signal handling around it) -> write the outcome -> release the lease
-> return the exit code. Events of the run all go through one EventBus.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from formafriend_scheduler.alerts import DURATION_SHARE, Alert, duration_alert
from formafriend_scheduler.clock import Clock
from formafriend_scheduler.config import Settings
from formafriend_scheduler.errors import (
    ClockSkew,
    DatabaseUnavailable,
    ExitCode,
    JobLocked,
    LeaseLost,
    SchedulerError,
)
from formafriend_scheduler.hooks import events as ev
from formafriend_scheduler.hooks.events import Event, EventBus
from formafriend_scheduler.ids import new_run_id
from formafriend_scheduler.lifecycle.context import (
    JobContext,
    JobOutcome,
    ProgressCallback,
    StopReason,
)
from formafriend_scheduler.lifecycle.lock import Heartbeat, Lease, Owner, acquire
from formafriend_scheduler.lifecycle.memory import MemorySampler
from formafriend_scheduler.lifecycle.signals import GracefulShutdown, Interrupted
from formafriend_scheduler.redact import Redactor, one_line
from formafriend_scheduler.store import Store
from formafriend_scheduler.store.indexes import SCHEDULER_INDEXES

log = logging.getLogger(__name__)

MAX_RECORDED_EVENTS = 50
MB = 1024 * 1024


class Job(Protocol):
    job_type: str

    def run(self, ctx: JobContext) -> JobOutcome: ...


class Reporter(Protocol):
    """What happens around a run besides the run itself (reporting.RunReporter)."""

    def alert_now(self, alert: Alert, health_data: dict[str, Any]) -> None: ...

    def after_run(self, result: RunResult) -> None: ...


@dataclass
class RunResult:
    run_id: str
    job_type: str
    status: str
    exit_code: int
    stats: dict[str, int]
    duration_seconds: float
    peak_memory_bytes: int
    message: str = ""
    error: dict[str, str] | None = None
    dry_run: bool = False
    events: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "jobId": self.run_id,
            "type": self.job_type,
            "status": self.status,
            "exitCode": self.exit_code,
            "stats": self.stats,
            "durationSeconds": round(self.duration_seconds, 3),
            "peakMemoryMB": round(self.peak_memory_bytes / MB, 1),
            "message": self.message,
            "error": self.error,
        }


class RecordedEvents:
    """Keeps the run's events for its job record (capped)."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []

    def handle(self, event: Event) -> None:
        if len(self.items) < MAX_RECORDED_EVENTS:
            self.items.append(event.as_document())


class Runner:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        clock: Clock,
        events: EventBus,
        *,
        redactor: Redactor | None = None,
        check_clock_skew: bool = True,
        on_progress: ProgressCallback | None = None,
        reporter: Reporter | None = None,
    ) -> None:
        self._settings = settings
        self._store = store
        self._clock = clock
        self._events = events
        self._redact = redactor or Redactor(settings.secret_values())
        self._check_clock_skew = check_clock_skew
        self._on_progress = on_progress
        self._reporter = reporter

    # -- before the run -----------------------------------------------------

    def verify_clock(self) -> None:
        server_time = self._store.server_time()
        if server_time is None:
            return  # an in-process database shares our clock
        skew = (self._clock.now() - server_time).total_seconds()
        limit = self._settings.max_clock_skew_seconds
        if abs(skew) > limit:
            direction = "ahead of" if skew > 0 else "behind"
            raise ClockSkew(
                f"the local clock is {abs(skew):.1f} s {direction} the MongoDB server's "
                f"(limit SCHEDULER_MAX_CLOCK_SKEW_SECONDS={limit:g}); refusing to run"
            )

    def _take_lease(self, job_type: str, run_id: str) -> Lease:
        owner = Owner(run_id=run_id, host=socket.gethostname(), pid=os.getpid())
        ttl = timedelta(seconds=self._settings.lock_ttl_seconds)
        lease, previous = acquire(
            self._store.locks, job_type, owner, self._clock, ttl, renewals=self._store.once().locks
        )
        if previous is not None:
            reason = (
                f"its lease expired at {previous.expires_at:%Y-%m-%d %H:%M:%S}Z without a "
                f"release (owner {previous.host} pid {previous.pid} presumed dead); "
                f"taken over by {run_id}"
            )
            try:
                if self._store.jobs.mark_abandoned(previous.run_id, self._clock.now(), reason):
                    log.warning("marked run %s abandoned: %s", previous.run_id, reason)
            except BaseException:
                self._release_quietly(lease)
                raise
        return lease

    # -- the run ------------------------------------------------------------

    def run(self, job: Job, options: dict[str, Any] | None = None) -> RunResult:
        """Run `job` once; raises JobLocked, ClockSkew or DatabaseUnavailable
        when it cannot start, otherwise reports the outcome in the RunResult."""
        contexts: list[JobContext] = []

        def on_signal(signum: int) -> None:
            for ctx in contexts:
                ctx.request_stop(
                    StopReason.SIGNAL, f"received {signal.Signals(signum).name}", signum
                )

        # Handlers from before the lease is taken until after it is released,
        # so a signal at any point still ends with a record and a release.
        shutdown = GracefulShutdown(on_signal, self._settings.shutdown_grace_seconds)
        with shutdown:
            return self._run(job, dict(options or {}), shutdown, on_signal, contexts)

    def _run(
        self,
        job: Job,
        options: dict[str, Any],
        shutdown: GracefulShutdown,
        on_signal: Callable[[int], None],
        contexts: list[JobContext],
    ) -> RunResult:
        started_at = self._clock.now()
        run_id = new_run_id(job.job_type, started_at)
        try:
            lease = self._start(job.job_type, run_id, started_at, options)
        except JobLocked:
            raise  # not a failure: the live run reports for itself
        except SchedulerError as not_started:
            self._emit_not_started(run_id, job.job_type, not_started)
            raise

        ctx = self._context(run_id, job.job_type, lease, options)
        contexts.append(ctx)
        if shutdown.received is not None:  # a signal arrived while starting
            on_signal(shutdown.received)
        recorded = RecordedEvents()
        self._events.add_sink(recorded)
        # The heartbeat runs until the outcome is written: slow event sinks
        # (webhook retries, alert e-mail) must not let the lease run out.
        heartbeat = Heartbeat(lease)
        heartbeat.start()
        try:
            try:
                self._events.emit(ev.JOB_STARTED, jobId=run_id, type=job.job_type)
                outcome, error, peak = self._execute(job, ctx, shutdown)
                self._confirm_lease(ctx)
                result = self._conclude(ctx, outcome, error, peak, options)
            finally:
                heartbeat.stop()
            result.events = list(recorded.items)
            written = self._finish(lease, self._outcome_fields(ctx, result, peak))
            if not written and result.exit_code != ExitCode.TEMPFAIL:
                # Superseded after the job returned: another run owns the job now.
                result.status, result.exit_code = "interrupted", ExitCode.TEMPFAIL
                result.message = "superseded: another run took over the job before it finished"
            if self._reporter is not None:
                self._reporter.after_run(result)
        finally:
            self._events.remove_sink(recorded)
        late = recorded.items[len(result.events) :]
        if written and late:
            self._record_late_events(run_id, late)
        return result

    def _start(
        self, job_type: str, run_id: str, started_at: datetime, options: dict[str, Any]
    ) -> Lease:
        """Indexes, clock check, lease and the initial job record."""
        self._store.indexes.ensure(SCHEDULER_INDEXES)
        if self._check_clock_skew:
            self.verify_clock()
        lease = self._take_lease(job_type, run_id)
        try:
            self._store.jobs.insert(
                self._initial_record(run_id, job_type, started_at, lease, options)
            )
        except BaseException:
            self._release_quietly(lease)
            raise
        return lease

    def _emit_not_started(self, run_id: str, job_type: str, error: SchedulerError) -> None:
        """A run that could not start is a failure the monitors must hear of
        (webhook, /fail ping), even though it has no job record."""
        self._events.emit(
            ev.JOB_FAILED,
            jobId=run_id,
            jobType=job_type,
            error=self._describe_error(error),
            duration=0,
            exitCode=int(error.exit_code),
        )

    def _outcome_fields(self, ctx: JobContext, result: RunResult, peak: int) -> dict[str, Any]:
        return {
            "status": result.status,
            "finishedAt": self._clock.now(),
            "durationMs": round(result.duration_seconds * 1000),
            "stats": result.stats,
            "errors": [self._redact(sample) for sample in ctx.error_samples],
            "error": result.error,
            "message": result.message,
            "exitCode": result.exit_code,
            "peakMemoryBytes": peak,
            "events": result.events,
        }

    def _record_late_events(self, run_id: str, late: list[dict[str, Any]]) -> None:
        """End-of-run alerts come after the outcome is written; add them to it."""
        try:
            self._store.jobs.append_events(run_id, late)
        except SchedulerError as error:
            log.warning("could not add the end-of-run events to %s: %s", run_id, error)

    def _confirm_lease(self, ctx: JobContext) -> None:
        """A run may only report what it did while it still held the lease."""
        if not ctx.lease.lost:
            ctx.lease.renew()
        if ctx.lease.lost:
            ctx.request_stop(StopReason.LEASE_LOST, ctx.lease.lost_reason)

    def _context(
        self, run_id: str, job_type: str, lease: Lease, options: dict[str, Any]
    ) -> JobContext:
        def record_progress(fields: dict[str, Any]) -> bool:
            """False only when the record is no longer this run's to write."""
            try:
                return self._store.jobs.update_running(
                    run_id, lease.token, {**fields, "stats": dict(ctx.stats)}
                )
            except DatabaseUnavailable as error:
                log.warning("could not record progress: %s", error)
                return True

        ctx = JobContext(
            run_id=run_id,
            job_type=job_type,
            settings=self._settings,
            store=self._store,
            clock=self._clock,
            events=self._events,
            lease=lease,
            options=options,
            record_progress=record_progress,
            on_progress=self._on_progress,
        )
        if self._reporter is not None:
            reporter = self._reporter
            ctx.raise_alert = lambda alert: reporter.alert_now(alert, {"jobId": run_id})
        return ctx

    def _execute(
        self, job: Job, ctx: JobContext, shutdown: GracefulShutdown
    ) -> tuple[JobOutcome, BaseException | None, int]:
        """Run the job with the memory watch around it."""
        sampler = MemorySampler(on_sample=self._memory_watch(ctx))
        outcome = JobOutcome()
        error: BaseException | None = None
        sampler.start()
        try:
            with shutdown.work():
                outcome = job.run(ctx)
        except Interrupted as interrupted:
            ctx.request_stop(StopReason.SIGNAL, "interrupted in flight", interrupted.signum)
        except LeaseLost as lost:
            ctx.request_stop(StopReason.LEASE_LOST, str(lost))
        except Exception as exc:  # the run's outcome records it; the CLI maps the code
            error = exc
            log.debug("job %s failed", ctx.run_id, exc_info=True)
        finally:
            peak = sampler.stop()
        return outcome, error, peak

    def _conclude(
        self,
        ctx: JobContext,
        outcome: JobOutcome,
        error: BaseException | None,
        peak: int,
        options: dict[str, Any],
    ) -> RunResult:
        status, exit_code = self._decide(outcome, ctx, error)
        duration = ctx.elapsed_seconds
        error_doc = self._describe_error(error)
        if error_doc is None and ctx.stop and ctx.stop.reason is StopReason.DATABASE_UNAVAILABLE:
            error_doc = {"class": "DatabaseUnavailable", "message": self._redact(ctx.stop.detail)}
        if error_doc is None and status == "failed":  # the job judged its own run failed
            error_doc = {"class": "JobFailed", "message": self._redact(outcome.message)}
        if error_doc is not None:
            message = error_doc["message"]
        elif ctx.stop is not None:
            message = ctx.stop.detail
        else:
            message = outcome.message
        self._emit_outcome(
            ctx.run_id, ctx.job_type, status, exit_code, ctx.stats, duration, error_doc
        )
        return RunResult(
            run_id=ctx.run_id,
            job_type=ctx.job_type,
            status=status,
            exit_code=exit_code,
            stats=dict(ctx.stats),
            duration_seconds=duration,
            peak_memory_bytes=peak,
            message=message,
            error=error_doc,
            dry_run=bool(options.get("dry_run")),
        )

    # -- helpers ------------------------------------------------------------

    def _initial_record(
        self,
        run_id: str,
        job_type: str,
        started_at: datetime,
        lease: Lease,
        options: dict[str, Any],
    ) -> dict[str, Any]:
        return {
            "_id": run_id,
            "type": job_type,
            "status": "running",
            "startedAt": started_at,
            "host": lease.owner.host,
            "pid": lease.owner.pid,
            "options": options,
            "stats": {},
            "progress": {"done": 0, "total": 0, "updatedAt": started_at},
            "lease": {"token": lease.token, "ttlSeconds": self._settings.lock_ttl_seconds},
        }

    @staticmethod
    def _release_quietly(lease: Lease, store: Store | None = None) -> None:
        try:
            if not lease.release(store.locks if store else None) and not lease.lost:
                log.warning("lease of %s was no longer ours at release", lease.job_type)
        except SchedulerError as error:
            log.error("could not release the %s lease: %s", lease.job_type, error)

    def _memory_watch(self, ctx: JobContext) -> Callable[[int], None]:
        """Called with each memory sample (every memory.SAMPLE_SECONDS): the
        memory limit, its alert threshold, and the alert at 75 % of the
        duration limit."""
        limit = self._settings.max_memory_mb * MB
        threshold = self._settings.memory_alert_threshold
        duration_limit = self._settings.max_job_duration_hours * 3600
        alerted = False
        duration_alerted = False

        def watch(rss: int) -> None:
            nonlocal alerted, duration_alerted
            elapsed = ctx.elapsed_seconds
            if elapsed >= DURATION_SHARE * duration_limit and not duration_alerted:
                duration_alerted = True
                ctx.alert(duration_alert(self._settings, ctx.job_type, elapsed))
            if rss >= threshold * limit and not alerted:
                alerted = True
                self._events.emit(
                    ev.HIGH_MEMORY_USAGE,
                    jobId=ctx.run_id,
                    memUsage={"rss": rss, "limit": limit},
                    usagePercent=round(rss / limit, 3),
                )
            if rss > limit:
                ctx.request_stop(
                    StopReason.MEMORY_LIMIT,
                    f"process tree uses {rss / MB:.0f} MB, over SCHEDULER_MAX_MEMORY_MB "
                    f"({self._settings.max_memory_mb})",
                )

        return watch

    @staticmethod
    def _decide(
        outcome: JobOutcome, ctx: JobContext, error: BaseException | None
    ) -> tuple[str, int]:
        if isinstance(error, DatabaseUnavailable):
            return "failed", ExitCode.TEMPFAIL
        if error is not None:
            return "failed", ExitCode.FAILED
        if ctx.stop is not None:
            if ctx.stop.reason is StopReason.SIGNAL:
                code = ExitCode.SIGINT if ctx.stop.signum == signal.SIGINT else ExitCode.SIGTERM
                return "interrupted", code
            if ctx.stop.reason is StopReason.LEASE_LOST:
                return "interrupted", ExitCode.TEMPFAIL
            if ctx.stop.reason is StopReason.DATABASE_UNAVAILABLE:
                return "failed", ExitCode.TEMPFAIL
            return "partial", ExitCode.PARTIAL  # duration or memory limit
        if outcome.status == "partial":
            return "partial", ExitCode.PARTIAL
        if outcome.status == "failed":
            return "failed", ExitCode.FAILED
        return outcome.status, ExitCode.OK

    def _describe_error(self, error: BaseException | None) -> dict[str, str] | None:
        if error is None:
            return None
        return {"class": type(error).__name__, "message": one_line(self._redact(str(error)))}

    def _emit_outcome(
        self,
        run_id: str,
        job_type: str,
        status: str,
        exit_code: int,
        stats: dict[str, int],
        duration: float,
        error: dict[str, str] | None,
    ) -> None:
        # The seed's payloads, plus the job type and exit code that pings need.
        duration_ms = round(duration * 1000)
        if status == "failed":
            self._events.emit(
                ev.JOB_FAILED,
                jobId=run_id,
                jobType=job_type,
                error=error,
                duration=duration_ms,
                exitCode=exit_code,
            )
            return
        self._events.emit(
            ev.JOB_COMPLETED,
            jobId=run_id,
            type=job_type,
            status=status,
            stats=stats,
            duration=duration_ms,
            exitCode=exit_code,
        )
        if status in ("success", "partial"):
            self._events.emit(ev.completed_event_of(job_type), jobId=run_id, stats=stats)

    def _finish(self, lease: Lease, fields: dict[str, Any]) -> bool:
        """Write the outcome and release the lease; False when superseded.

        Both wait out a database restart for up to the lease's TTL (after
        which the lease has expired anyway and the next run marks the record
        abandoned), so a run that failed because the database went away still
        leaves its record closed and its lease free once it is back.
        """
        patient = self._store.patient(lease.ttl.total_seconds())
        # A run that lost its lease may find its record already marked abandoned
        # by its successor; it still owns that record and gives the true reason.
        from_statuses = ["running", "abandoned"] if lease.lost else ["running"]
        written = True
        try:
            written = patient.jobs.finish(lease.owner.run_id, lease.token, fields, from_statuses)
            if not written:
                log.warning("job record %s was not updated (superseded)", lease.owner.run_id)
        except SchedulerError as error:
            # The lease expires by itself; the next run marks this record abandoned.
            log.error("could not record the outcome (%s): %s", fields["status"], error)
        # Always try: the release filters on our token, so it cannot free a
        # successor's lease, and it saves the next run a wait for expiry.
        self._release_quietly(lease, patient)
        return written

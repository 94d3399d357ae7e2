"""What the e-mail jobs (monthly-invitations, reminders) share: building a
worker's transport and composer, running batches through the pool, and what
a hard bounce changes."""

from __future__ import annotations

import logging
import multiprocessing
import os
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any, ClassVar

from formafriend_scheduler.alerts import run_alert
from formafriend_scheduler.clock import Clock
from formafriend_scheduler.config import Settings
from formafriend_scheduler.eligibility import Defaults
from formafriend_scheduler.jobs.delivery import Deliverer, Outgoing
from formafriend_scheduler.lifecycle.context import JobContext, JobOutcome, StopReason
from formafriend_scheduler.lifecycle.lock import LeaseMirror
from formafriend_scheduler.lifecycle.pool import (
    HandlerFactory,
    InlinePool,
    ProcessPool,
    Task,
    TaskResult,
)
from formafriend_scheduler.mail.ratelimit import RateLimiter
from formafriend_scheduler.mail.setup import composer_for, transport_for
from formafriend_scheduler.mail.transports import Delivery, Transport
from formafriend_scheduler.store import Store, connect
from formafriend_scheduler.store.base import WriteReport

log = logging.getLogger(__name__)


def defaults_of(settings: Settings) -> Defaults:
    return Defaults(settings.monthly_job_day, settings.monthly_job_hour, settings.timezone)


def shared_rate_slot() -> Any:
    """The next free send slot, shared by every worker of a run."""
    return multiprocessing.get_context("spawn").Value("d", 0.0)


def worker_deliverer(
    settings: Settings, clock: Clock, run_id: str, rate_slot: Any, lease: LeaseMirror
) -> tuple[Store, Transport, Deliverer]:
    """A worker's own store, transport and deliverer (built in the worker),
    which stops claiming and sending once the run's lease is lost."""
    store = connect(settings)
    transport = transport_for(settings)
    deliverer = Deliverer(
        store=store,
        transport=transport,
        composer=composer_for(settings),
        rate_limiter=RateLimiter(settings.email_rate_per_second, rate_slot),
        clock=clock,
        run_id=run_id,
        claimant=f"{run_id}/{os.getpid()}",
        # A live worker cannot hold a message longer than a batch may run.
        stale_after=timedelta(milliseconds=settings.worker_timeout_ms),
        holds_lease=lambda: lease.holds(clock.now()),
        stopping=lease.stopping,
    )
    return store, transport, deliverer


class BounceEffects:
    """A permanent refusal: the invitation becomes `bounced` (from the statuses
    this job sends for, never from one the app moved on), the contact a hard bounce."""

    bounce_from: ClassVar[list[str | None]]

    def __init__(self, store: Store) -> None:
        self._store = store

    def bounced(self, bounced: list[tuple[Outgoing, Delivery]], now: datetime) -> WriteReport:
        report = self._store.invitations.mark_bounced(
            [(m.invitation, d.detail) for m, d in bounced], now, self.bounce_from
        )
        report.add(
            self._store.contacts.record_hard_bounces(
                [(m.contact["_id"], d.detail) for m, d in bounced if m.contact is not None], now
            )
        )
        return report


def worker_count(ctx: JobContext, requested: int | None) -> int:
    workers = requested if requested is not None else ctx.settings.max_workers
    if workers > 0 and ctx.store.in_process:
        # Not worth a cron mail: the demo and trials run this way on purpose.
        log.info("an in-process (mongomock) database is not shared with workers: --workers 0")
        return 0
    return workers


def open_pool(ctx: JobContext, factory: HandlerFactory, workers: int) -> InlinePool | ProcessPool:
    if workers == 0:
        return InlinePool(factory)

    def incident(how: str, detail: str) -> None:
        ctx.count("workerTimeouts" if how == "timed out" else "workerCrashes")
        ctx.alert(run_alert(ctx.job_type, "workers", "error", f"{ctx.job_type}: {detail}"))

    return ProcessPool(
        factory, workers, ctx.settings.worker_timeout_ms / 1000, on_incident=incident
    )


def merge(ctx: JobContext, result: TaskResult) -> None:
    """Add a batch's stats and errors to the run's; a failed batch is counted."""
    for name, value in result.stats.items():
        ctx.count(name, value)
    for message in result.errors:
        ctx.note_error(message)
    if result.failure is not None:
        ctx.count("failedBatches")
        ctx.note_error(f"batch {result.task_id} ({result.kind}) failed: {result.failure}")
        log.error("batch %s (%s) failed: %s", result.task_id, result.kind, result.failure)
    if result.database_unavailable:
        # Every other batch would fail the same way: stop, and exit 75 for
        # the next scheduled run to retry.
        ctx.request_stop(StopReason.DATABASE_UNAVAILABLE, result.failure or "MongoDB unreachable")


def batches(
    ids: Iterable[Any], size: int, kind: str, numbering: Callable[[], int]
) -> Iterable[Task]:
    batch: list[Any] = []
    for item in ids:
        batch.append(item)
        if len(batch) >= size:
            yield Task(numbering(), kind, tuple(batch))
            batch = []
    if batch:
        yield Task(numbering(), kind, tuple(batch))


def left_for_next_run(not_attempted: int) -> str:
    """The summary's note of messages the run did not get to (still queued)."""
    return f", {not_attempted} not attempted (left for the next run)" if not_attempted else ""


def delivery_outcome(
    ctx: JobContext, *, sent: int, failed: int, bounced: int, halted: str, summary: str
) -> JobOutcome:
    """The run's status from what its e-mails did.

    failed: nothing could be sent because the mail server was down;
    partial: a batch failed, sending stopped early, or failures and bounces
    went over SCHEDULER_ERROR_RATE_THRESHOLD; success otherwise.
    """
    attempted = sent + failed + bounced
    if attempted and sent == 0 and failed and halted:
        return JobOutcome("failed", f"{summary}: {halted}")
    if ctx.stats.get("failedBatches") or halted:
        return JobOutcome("partial", summary + (f" ({halted})" if halted else ""))
    error_rate = (failed + bounced) / attempted if attempted else 0.0
    if error_rate > ctx.settings.error_rate_threshold:
        return JobOutcome("partial", f"{summary} (error rate {error_rate:.1%})")
    return JobOutcome("success", summary)

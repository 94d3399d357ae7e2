"""monthly-invitations: each due user's invitations, created once and sent once.

Two passes through one worker pool:
1. users: pages of active senders whose send moment for the month has come
   and whose cycle is not done, in batches of SCHEDULER_BATCH_SIZE; a worker
   creates their invitations (the app's unique index makes a second one
   impossible), records the user's monthly run, and sends the invitations it
   created through the outbox protocol (jobs/delivery.py);
2. sending: the month's queued invitations that are left (ones an earlier
   run created, or this pass could not send), in batches of
   SCHEDULER_INVITATION_BATCH_SIZE, through the same protocol.
Once the mail server is found down, the first pass only creates.
"""

from __future__ import annotations

import itertools
import logging
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from formafriend_scheduler.eligibility import Month, due_for, latest_send_day
from formafriend_scheduler.jobs.mailing import (
    defaults_of,
    delivery_outcome,
    left_for_next_run,
    merge,
    open_pool,
    shared_rate_slot,
    worker_count,
)
from formafriend_scheduler.jobs.monthly_worker import (
    CREATE,
    CREATE_AND_SEND,
    SEND,
    MonthlyWorkerFactory,
)
from formafriend_scheduler.lifecycle.context import JobContext, JobOutcome
from formafriend_scheduler.lifecycle.pool import InlinePool, ProcessPool, Task, TaskResult
from formafriend_scheduler.store.indexes import INVITATION_KEYS
from formafriend_scheduler.store.users import parse_user_id, senders_filter

log = logging.getLogger(__name__)

USER_PAGE = 1000  # users read per query (store/users.py: candidates_page)
STAT_NAMES = (
    "totalUsers",
    "processedUsers",
    "totalInvitations",
    "createdInvitations",
    "alreadyInvited",
    "sentInvitations",
    "failedInvitations",
    "bouncedInvitations",
    "notAttempted",
    "skippedContacts",
    "invalidPreferences",
    "batchesProcessed",
    "failedBatches",
)


@dataclass(frozen=True)
class MonthlyOptions:
    month: Month | None = None
    user_id: str | None = None
    limit: int | None = None
    workers: int | None = None
    batch_size: int | None = None
    dry_run: bool = False

    def as_record(self) -> dict[str, Any]:
        return {
            "month": str(self.month) if self.month else None,
            "user": self.user_id,
            "limit": self.limit,
            "workers": self.workers,
            "batchSize": self.batch_size,
            "dry_run": self.dry_run,
        }


@dataclass
class _Progress:
    phase: str = "users"
    done: int = 0
    total: int = 0
    halted: str = ""  # why sending stopped early (mail server down)
    processed_users: list[Any] = field(default_factory=list)


class MonthlyInvitationsJob:
    job_type = "monthly-invitations"

    def __init__(self, options: MonthlyOptions) -> None:
        self.options = options
        self._task_ids = itertools.count(1)

    def run(self, ctx: JobContext) -> JobOutcome:
        settings = ctx.settings
        now = ctx.clock.now()
        month = self.options.month or Month.containing(now, settings.zone)
        for name in STAT_NAMES:
            ctx.stats.setdefault(name, 0)
        only = parse_user_id(self.options.user_id) if self.options.user_id else None
        if not self.options.dry_run:
            ctx.store.indexes.ensure(INVITATION_KEYS)  # at most one invitation per recipient
        factory = MonthlyWorkerFactory(
            settings=settings,
            clock=ctx.clock,
            month=month,
            run_id=ctx.run_id,
            dry_run=self.options.dry_run,
            rate_slot=shared_rate_slot(),
            lease=ctx.lease.mirror,
            switch_over=self._switch_over(ctx, month),
        )
        progress = _Progress()

        def collect(result: TaskResult) -> None:
            self._collect(ctx, progress, result)

        with open_pool(ctx, factory, worker_count(ctx, self.options.workers)) as pool:
            query = senders_filter(latest_send_day(month, now))
            progress.total = ctx.store.users.count(query) if only is None else 1
            ctx.progress(0, progress.total, "users")
            pool.run(
                self._create_tasks(ctx, month, query, only, progress), ctx.should_stop, collect
            )
            if not ctx.should_stop():
                self._send_pass(ctx, pool, progress, month, collect)
        return self._outcome(ctx, progress, month)

    def _switch_over(self, ctx: JobContext, month: Month) -> datetime | None:
        """When this scheduler took over, when that may fall after the month's
        first invitations (a day of slack for every timezone); else None, and
        no worker looks for the Node.js service's invitations."""
        taken_over = ctx.store.cycles.switch_over(ctx.clock.now(), record=not self.options.dry_run)
        month_began = datetime(month.year, month.month, 1, tzinfo=UTC) - timedelta(days=1)
        return taken_over if taken_over > month_began else None

    # -- pass 1: users --------------------------------------------------------

    def _create_kind(self, progress: _Progress) -> str:
        """Create and send, unless this is a dry run or sending has halted."""
        return CREATE if self.options.dry_run or progress.halted else CREATE_AND_SEND

    def _create_tasks(
        self,
        ctx: JobContext,
        month: Month,
        query: dict[str, Any],
        only: Any | None,
        progress: _Progress,
    ) -> Iterator[Task]:
        if latest_send_day(month, ctx.clock.now()) == 0:
            return  # a future month: nobody's send moment has come
        defaults = defaults_of(ctx.settings)
        batch_size = self.options.batch_size or ctx.settings.batch_size
        limit = self.options.limit
        now = ctx.clock.now()
        batch: list[Any] = []
        # Every hourly run reads every candidate (the app keeps no date of a
        # change to a user's schedule), so the next page is read while this
        # one's cycle markers are: 50,000 users on DocumentDB, 2.05 -> 1.5 s.
        with ThreadPoolExecutor(1, thread_name_prefix="users-page") as reader:
            upcoming = reader.submit(ctx.store.users.candidates_page, query, None, USER_PAGE, only)
            while True:
                page = upcoming.result()
                more = only is None and len(page) == USER_PAGE
                if more:
                    after = page[-1]["_id"]
                    upcoming = reader.submit(
                        ctx.store.users.candidates_page, query, after, USER_PAGE, None
                    )
                # One query per page for the markers of cycles already run this month.
                done = ctx.store.cycles.completed([user["_id"] for user in page], str(month))
                for user in page:
                    if user["_id"] in done or not due_for(user, month, now, defaults).due:
                        continue
                    ctx.count("totalUsers")
                    batch.append(user["_id"])
                    if limit is not None and ctx.stats["totalUsers"] >= limit:
                        yield Task(next(self._task_ids), self._create_kind(progress), tuple(batch))
                        return
                    if len(batch) >= batch_size:
                        yield Task(next(self._task_ids), self._create_kind(progress), tuple(batch))
                        batch = []
                if not more:
                    break
        if batch:
            yield Task(next(self._task_ids), self._create_kind(progress), tuple(batch))

    # -- pass 2: sending ------------------------------------------------------

    def _send_pass(
        self,
        ctx: JobContext,
        pool: InlinePool | ProcessPool,
        progress: _Progress,
        month: Month,
        collect: Any,
    ) -> None:
        # With --user or --limit only the selected users' invitations go out.
        restricted = self.options.user_id is not None or self.options.limit is not None
        from_users = progress.processed_users if restricted else None
        queued = ctx.store.invitations.count_queued(str(month), from_users)
        if self.options.dry_run:
            ctx.stats["wouldSend"] = queued + ctx.stats["createdInvitations"]
            return
        progress.phase, progress.done, progress.total = "sending", 0, queued
        ctx.progress(0, queued, "sending")
        pool.run(
            self._send_tasks(ctx, month, from_users),
            lambda: ctx.should_stop() or bool(progress.halted),
            collect,
        )

    def _send_tasks(
        self, ctx: JobContext, month: Month, from_users: list[Any] | None
    ) -> Iterator[Task]:
        size = ctx.settings.invitation_batch_size
        after = None
        while True:
            ids = ctx.store.invitations.queued_page(str(month), after, size, from_users)
            if not ids:
                return
            yield Task(next(self._task_ids), SEND, tuple(ids))
            after = ids[-1]

    # -- results ----------------------------------------------------------------

    def _collect(self, ctx: JobContext, progress: _Progress, result: TaskResult) -> None:
        merge(ctx, result)
        if result.failure is not None and result.kind == SEND:
            # Some may have gone out before the batch failed: the outbox knows,
            # and the next run sends only what is still queued.
            ctx.count("unconfirmedInvitations", len(result.items))
        if result.kind != SEND and (
            self.options.user_id is not None or self.options.limit is not None
        ):
            progress.processed_users.extend(result.items)
        progress.done += len(result.items)
        if result.stats.get("smtpDown") and not progress.halted:
            progress.halted = "the mail server is unavailable"
            log.error(
                "sending stopped: %s; queued invitations wait for the next run", progress.halted
            )
        ctx.progress(progress.done, max(progress.total, progress.done), progress.phase)

    def _outcome(self, ctx: JobContext, progress: _Progress, month: Month) -> JobOutcome:
        stats = Counter(ctx.stats)
        sent, failed, bounced = (
            stats["sentInvitations"],
            stats["failedInvitations"],
            stats["bouncedInvitations"],
        )
        summary = (
            f"{month}: {stats['totalUsers']} due user(s), {stats['createdInvitations']} "
            f"invitation(s) {'to create' if self.options.dry_run else 'created'}, "
            f"{sent} sent, {failed} failed, {bounced} bounced"
            + left_for_next_run(stats["notAttempted"])
        )
        if self.options.dry_run:
            return JobOutcome(
                "success", f"dry run: {summary}, {stats['wouldSend']} to send; nothing written"
            )
        return delivery_outcome(
            ctx, sent=sent, failed=failed, bounced=bounced, halted=progress.halted, summary=summary
        )

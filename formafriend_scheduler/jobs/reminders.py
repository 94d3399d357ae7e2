"""reminders: the J+3 and J+7 reminders, each sent once, within quiet hours.

The parent pages through candidate invitations in `tracking.sentAt` order, a
page of READ_PAGE ids at a time (no cap: memory is bounded by the page, not
the backlog), and hands batches of
ids to the pool; a worker decides each invitation's reminder against the
sender's preferences, the contact's state and the sender's local hour, and
sends through the outbox protocol (jobs/delivery.py).
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from formafriend_scheduler.jobs.mailing import (
    delivery_outcome,
    left_for_next_run,
    merge,
    open_pool,
    shared_rate_slot,
    worker_count,
)
from formafriend_scheduler.jobs.reminders_worker import REMIND, ReminderWorkerFactory
from formafriend_scheduler.lifecycle.context import JobContext, JobOutcome
from formafriend_scheduler.lifecycle.pool import Task, TaskResult
from formafriend_scheduler.reminder_rules import ReminderType
from formafriend_scheduler.store.invitations import reminder_candidates

# Candidates read per query, then cut into tasks of the batch size (100 by
# default). Each query is an index range scan in `tracking.sentAt` order on
# MongoDB and DocumentDB, whose cost is the page's own entries, so a larger
# page costs no more there and saves round trips. A server that cannot serve
# the range from an index (mongo-java-server) reads and sorts every due
# candidate again for each page: over a 100,000 backlog with 59,741 due, its
# run took 50.7 s with pages of 1,000 and 23.1 s with pages of 10,000
# (2026-12-07; the fair floor 8.2 and 8.0 s). The parent holds one page:
# 10,000 (sentAt, _id) pairs and their tasks, about 2 MB.
READ_PAGE = 10_000

STAT_NAMES = (
    "candidatesChecked",
    "firstRemindersSent",
    "secondRemindersSent",
    "skippedPreference",
    "skippedContact",
    "outsideWindow",
    "failedReminders",
    "bouncedReminders",
    "notAttempted",
    "batchesProcessed",
    "failedBatches",
)


@dataclass(frozen=True)
class ReminderOptions:
    only: ReminderType | None = None
    limit: int | None = None
    workers: int | None = None
    dry_run: bool = False

    def as_record(self) -> dict[str, Any]:
        return {
            "type": self.only,
            "limit": self.limit,
            "workers": self.workers,
            "dry_run": self.dry_run,
        }


class RemindersJob:
    job_type = "reminders"

    def __init__(self, options: ReminderOptions) -> None:
        self.options = options
        self._task_ids = itertools.count(1)
        self._halted = False
        self._done = 0

    def run(self, ctx: JobContext) -> JobOutcome:
        settings = ctx.settings
        for name in STAT_NAMES:
            ctx.stats.setdefault(name, 0)
        query = reminder_candidates(
            ctx.clock.now(),
            settings.first_reminder_days,
            settings.second_reminder_days,
            self.options.only,
        )
        total = ctx.store.invitations.count_matching(query)
        if self.options.limit is not None:
            total = min(total, self.options.limit)
        ctx.progress(0, total, "reminders")
        factory = ReminderWorkerFactory(
            settings=settings,
            clock=ctx.clock,
            run_id=ctx.run_id,
            only=self.options.only,
            dry_run=self.options.dry_run,
            rate_slot=shared_rate_slot(),
            lease=ctx.lease.mirror,
        )

        def collect(result: TaskResult) -> None:
            merge(ctx, result)
            if result.failure is not None:
                ctx.count("unconfirmedReminders", len(result.items))
            if result.stats.get("smtpDown"):
                self._halted = True
            self._done += len(result.items)
            ctx.progress(self._done, max(total, self._done), "reminders")

        with open_pool(ctx, factory, worker_count(ctx, self.options.workers)) as pool:
            pool.run(
                self._tasks(ctx, query),
                lambda: ctx.should_stop() or self._halted,
                collect,
            )
        return self._outcome(ctx)

    def _tasks(self, ctx: JobContext, query: dict[str, Any]) -> Iterator[Task]:
        size = ctx.settings.invitation_batch_size
        remaining = self.options.limit
        after = None
        while remaining is None or remaining > 0:
            read = max(READ_PAGE, size)
            limit = read if remaining is None else min(read, remaining)
            page = ctx.store.invitations.reminder_page(query, after, limit)
            if not page:
                return
            for start in range(0, len(page), size):
                yield Task(
                    next(self._task_ids),
                    REMIND,
                    tuple(invitation_id for _, invitation_id in page[start : start + size]),
                )
            after = page[-1]
            if remaining is not None:
                remaining -= len(page)

    def _outcome(self, ctx: JobContext) -> JobOutcome:
        stats = Counter(ctx.stats)
        sent = stats["firstRemindersSent"] + stats["secondRemindersSent"]
        failed, bounced = stats["failedReminders"], stats["bouncedReminders"]
        summary = (
            f"{stats['candidatesChecked']} checked: {stats['firstRemindersSent']} first and "
            f"{stats['secondRemindersSent']} second reminder(s) sent, {failed} failed, "
            f"{bounced} bounced, {stats['outsideWindow']} outside quiet hours, "
            f"{stats['skippedPreference'] + stats['skippedContact']} skipped"
            + left_for_next_run(stats["notAttempted"])
        )
        if self.options.dry_run:
            to_send = stats["firstRemindersToSend"] + stats["secondRemindersToSend"]
            return JobOutcome("success", f"dry run: {summary}; {to_send} to send, nothing sent")
        return delivery_outcome(
            ctx,
            sent=sent,
            failed=failed,
            bounced=bounced,
            halted="the mail server is unavailable" if self._halted else "",
            summary=summary,
        )

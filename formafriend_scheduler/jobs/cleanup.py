"""cleanup: expire and purge old invitations, reset soft bounces, deactivate
hard-bounced contacts, and prune the scheduler's own history.

Each step works in bounded batches and is safe to re-run: it only selects what
still needs doing, so an interrupted run is finished by the next one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from formafriend_scheduler.errors import StoreError
from formafriend_scheduler.lifecycle.context import JobContext, JobOutcome
from formafriend_scheduler.lifecycle.lock import stuck_runs
from formafriend_scheduler.store import Store

log = logging.getLogger(__name__)

CYCLE_MARKERS_KEPT_DAYS = 62

TEMPORARY_BOUNCE_RESET_AFTER = timedelta(days=30)


@dataclass(frozen=True)
class CleanupStep:
    stat: str
    count: Callable[[], int]
    apply_batch: Callable[[int], int]


def cleanup_steps(store: Store, now: datetime, ctx: JobContext) -> list[CleanupStep]:
    settings = ctx.settings
    token_cutoff = now - timedelta(days=settings.expired_token_retention_days)
    bounce_cutoff = now - TEMPORARY_BOUNCE_RESET_AFTER
    metrics_cutoff = now - timedelta(hours=settings.metrics_retention_hours)
    history_cutoff = now - timedelta(days=settings.history_retention_days)
    # A cycle marker is what makes a month count once: this month's and the
    # last month's (a backfill) stay whatever the history retention says.
    cycles_cutoff = min(history_cutoff, now - timedelta(days=CYCLE_MARKERS_KEPT_DAYS))
    invitations, contacts = store.invitations, store.contacts

    def stuck() -> list[str]:
        records = stuck_runs(store.jobs.running(), store.locks.holders(), now)
        return [str(record["_id"]) for record in records if record["_id"] != ctx.run_id]

    def abandon(limit: int) -> int:
        reason = "found running without a live lease by cleanup (its process died)"
        return sum(store.jobs.mark_abandoned(run_id, now, reason) for run_id in stuck()[:limit])

    return [
        CleanupStep(
            "expiredInvitations",
            lambda: invitations.count_past_expiry(now),
            lambda limit: invitations.expire_batch(now, limit),
        ),
        CleanupStep(
            "deletedInvitations",
            lambda: invitations.count_expired_before(token_cutoff),
            lambda limit: invitations.delete_expired_batch(token_cutoff, limit),
        ),
        CleanupStep(
            "resetTemporaryBounces",
            lambda: contacts.count_temporary_bounces_to_reset(bounce_cutoff),
            lambda limit: contacts.reset_temporary_bounces_batch(bounce_cutoff, now, limit),
        ),
        CleanupStep(
            "deactivatedContacts",
            contacts.count_bounced_but_active,
            lambda limit: contacts.deactivate_bounced_batch(now, limit),
        ),
        CleanupStep("abandonedJobs", lambda: len(stuck()), abandon),
        CleanupStep(
            "prunedMetrics",
            lambda: store.metrics.count_prunable(metrics_cutoff),
            lambda limit: store.metrics.prune(metrics_cutoff, limit),
        ),
        CleanupStep(
            "prunedJobs",
            lambda: store.jobs.count_prunable(history_cutoff),
            lambda limit: store.jobs.prune(history_cutoff, limit),
        ),
        CleanupStep(
            "prunedOutbox",
            lambda: store.outbox.count_prunable(history_cutoff),
            lambda limit: store.outbox.prune(history_cutoff, limit),
        ),
        CleanupStep(
            "prunedClaims",
            lambda: store.claims.count_prunable(history_cutoff),
            lambda limit: store.claims.prune(history_cutoff, limit),
        ),
        CleanupStep(
            "prunedCycles",
            lambda: store.cycles.count_prunable(cycles_cutoff),
            lambda limit: store.cycles.prune(cycles_cutoff, limit),
        ),
        CleanupStep(
            "prunedHealthChecks",
            lambda: store.health.count_prunable(history_cutoff),
            lambda limit: store.health.prune(history_cutoff, limit),
        ),
    ]


class CleanupJob:
    job_type = "cleanup"

    def run(self, ctx: JobContext) -> JobOutcome:
        steps = cleanup_steps(ctx.store, ctx.clock.now(), ctx)
        batch = ctx.settings.invitation_batch_size
        pending = {step.stat: step.count() for step in steps}
        total = sum(pending.values())
        if ctx.dry_run:
            ctx.stats.update(pending)
            ctx.progress(total, total)
            return JobOutcome(message=f"dry run: {total} change(s) would be made, none made")

        done, failed_steps = 0, 0
        for step in steps:
            ctx.stats[step.stat] = 0
            try:
                while not ctx.should_stop():
                    changed = step.apply_batch(batch)
                    if changed == 0:
                        break
                    ctx.count(step.stat, changed)
                    done += changed
                    ctx.progress(done, max(total, done))
            except StoreError as error:
                # One failing step must not block the others; the next run retries it.
                failed_steps += 1
                ctx.note_error(f"{step.stat}: {error}")
                log.error("cleanup step %s failed: %s", step.stat, error)
            if ctx.stop is not None:
                break
        ctx.stats["failedSteps"] = failed_steps
        ctx.progress(done, max(total, done))
        if failed_steps:
            return JobOutcome("partial", f"{failed_steps} step(s) failed; {done} change(s) made")
        return JobOutcome(message=f"{done} change(s) made")

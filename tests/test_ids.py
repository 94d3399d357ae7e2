"""Job types and run ids."""

from __future__ import annotations

from datetime import UTC, datetime

from formafriend_scheduler.ids import JOB_TYPES, new_run_id
from formafriend_scheduler.jobs.cleanup import CleanupJob
from formafriend_scheduler.jobs.monthly import MonthlyInvitationsJob
from formafriend_scheduler.jobs.reminders import RemindersJob


def test_the_job_types_are_those_of_the_jobs() -> None:
    assert (
        MonthlyInvitationsJob.job_type,
        RemindersJob.job_type,
        CleanupJob.job_type,
    ) == JOB_TYPES


def test_run_ids_name_the_job_sort_by_time_and_differ() -> None:
    now = datetime(2026, 12, 5, 17, 0, tzinfo=UTC)
    first, second = new_run_id("cleanup", now), new_run_id("cleanup", now)
    assert first.startswith("cleanup-20261205T170000Z-")
    assert first != second

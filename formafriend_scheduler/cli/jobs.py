"""Job commands: each one builds its job and hands it to the shared runner."""

from __future__ import annotations

from typing import Annotated

import typer

from formafriend_scheduler.eligibility import Month
from formafriend_scheduler.jobs.cleanup import CleanupJob
from formafriend_scheduler.jobs.monthly import MonthlyInvitationsJob, MonthlyOptions
from formafriend_scheduler.jobs.reminders import ReminderOptions, RemindersJob
from formafriend_scheduler.reminder_rules import ReminderType
from formafriend_scheduler.store.users import parse_user_id

from .run import run_job
from .state import handle_errors, state_of

JsonOption = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]
DryRunOption = Annotated[
    bool, typer.Option("--dry-run", help="Count what would be done; write and send nothing.")
]
WorkersOption = Annotated[
    int | None,
    typer.Option(min=0, help="Worker processes (default SCHEDULER_MAX_WORKERS; 0: in-process)."),
]
LimitOption = Annotated[int | None, typer.Option(min=1, help="Only the first N due users.")]


REMINDER_TYPES: dict[str, ReminderType] = {"first": "first", "second": "second"}


def _month(text: str | None) -> Month | None:
    if text is None:
        return None
    try:
        return Month.parse(text)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--month") from None


@handle_errors
def cleanup(
    ctx: typer.Context,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Count what would change; change nothing.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Expire and purge old invitations, reset soft bounces, deactivate hard-bounced
    contacts, prune the scheduler's history.

    Example: formafriend-scheduler cleanup --dry-run
    """
    run_job(state_of(ctx), CleanupJob(), {"dry_run": dry_run}, as_json)


@handle_errors
def monthly_invitations(
    ctx: typer.Context,
    month: Annotated[
        str | None,
        typer.Option(
            help="Target month YYYY-MM (default: the current month in SCHEDULER_TIMEZONE)."
        ),
    ] = None,
    user: Annotated[str | None, typer.Option(help="Only this user (its _id).")] = None,
    limit: LimitOption = None,
    workers: WorkersOption = None,
    batch_size: Annotated[
        int | None, typer.Option(min=1, help="Users per batch (default SCHEDULER_BATCH_SIZE).")
    ] = None,
    dry_run: DryRunOption = False,
    as_json: JsonOption = False,
) -> None:
    """Create and send the monthly invitations of every user whose send day,
    time and timezone have come; each (user, contact, month) at most once.

    Run it every hour: each user goes out at their own moment.

    Example: formafriend-scheduler monthly-invitations --month 2027-01 --dry-run
    """
    state = state_of(ctx)
    if user is not None:
        try:
            parse_user_id(user)
        except ValueError as error:
            raise typer.BadParameter(str(error), param_hint="--user") from None
    target = _month(month) or Month.containing(state.clock.now(), state.settings.zone)
    options = MonthlyOptions(
        month=target,
        user_id=user,
        limit=limit,
        workers=workers,
        batch_size=batch_size,
        dry_run=dry_run,
    )
    run_job(state, MonthlyInvitationsJob(options), options.as_record(), as_json)


@handle_errors
def reminders(
    ctx: typer.Context,
    reminder_type: Annotated[
        str | None, typer.Option("--type", help="Only this reminder: first (J+3) or second (J+7).")
    ] = None,
    limit: Annotated[
        int | None, typer.Option(min=1, help="Check at most N candidate invitations.")
    ] = None,
    workers: WorkersOption = None,
    dry_run: DryRunOption = False,
    as_json: JsonOption = False,
) -> None:
    """Send the J+3 and J+7 reminders that are due, each once, between
    SCHEDULER_REMINDER_WINDOW_START and _END in the sender's timezone.

    Run it every hour: outside quiet hours an invitation simply waits.

    Example: formafriend-scheduler reminders --type first --dry-run
    """
    if reminder_type is not None and reminder_type not in REMINDER_TYPES:
        raise typer.BadParameter("must be first or second", param_hint="--type")
    only = REMINDER_TYPES.get(reminder_type or "")
    options = ReminderOptions(only=only, limit=limit, workers=workers, dry_run=dry_run)
    run_job(state_of(ctx), RemindersJob(options), options.as_record(), as_json)

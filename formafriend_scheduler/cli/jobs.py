"""Job commands: each one builds its job and hands it to the shared runner."""

from __future__ import annotations

from typing import Annotated

import typer

from formafriend_scheduler.jobs.cleanup import CleanupJob

from .run import run_job
from .state import handle_errors, state_of

JsonOption = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]


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

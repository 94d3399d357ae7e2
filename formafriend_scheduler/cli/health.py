"""health-check: exits with monitoring-plugin codes (0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN)."""

from __future__ import annotations

from typing import Annotated

import typer

from formafriend_scheduler.errors import ConfigError, HealthCode
from formafriend_scheduler.jobs.health import run_health_check

from . import output
from .state import handle_errors, state_of


@handle_errors
def health_check(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Check MongoDB, indexes, locks, recent error rate, the last monthly run and
    host memory; record the result and exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.

    Example: formafriend-scheduler health-check --json
    """
    state = state_of(ctx)
    try:
        settings = state.settings
    except ConfigError as error:  # a monitor must see UNKNOWN, not a usage error
        output.stderr.print(f"UNKNOWN: {error}", markup=False)
        raise typer.Exit(HealthCode.UNKNOWN) from None
    # One attempt: a monitoring probe reports an outage, it does not wait it out.
    store = state.store(retry_attempts=1)
    try:
        report = run_health_check(settings, store, state.clock)
    finally:
        store.close()
    if as_json:
        output.print_json(report.as_dict())
    elif not state.quiet(as_json) or report.code is not HealthCode.OK:
        worst = [check for check in report.checks if check.code is report.code]
        first_line = f"{report.code.name}: {report.status}"
        if report.code is not HealthCode.OK:
            first_line += " - " + "; ".join(check.summary for check in worst)
        output.stdout.print(first_line, markup=False)
        if output.on_terminal() or state.verbose:
            rows = [
                [check.name, output.styled(check.code.name), check.summary]
                for check in report.checks
            ]
            output.stdout.print(output.table("", ["check", "status", "detail"], rows))
    raise typer.Exit(report.code)

"""health-check: exits with monitoring-plugin codes (0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN)."""

from __future__ import annotations

import traceback
from typing import Annotated

import typer

from formafriend_scheduler.errors import HealthCode
from formafriend_scheduler.jobs.health import run_health_check
from formafriend_scheduler.redact import one_line
from formafriend_scheduler.reporting import RunReporter

from . import output
from .state import state_of


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
        # One attempt: a monitoring probe reports an outage, it does not wait it out.
        store = state.store(retry_attempts=1)
        events = state.events()
        try:
            report = run_health_check(settings, store, state.clock, events=events)
            RunReporter(settings, store, state.clock, events).after_health_check(int(report.code))
        finally:
            store.close()
    except Exception as error:  # a monitor must see UNKNOWN, never a usage or crash code
        if state.debug:
            output.stderr.print(state.redactor(traceback.format_exc()), markup=False)
        message = one_line(state.redactor(str(error)), 1000)
        if as_json:
            output.print_json(
                {"status": "unknown", "code": int(HealthCode.UNKNOWN), "error": message}
            )
        else:
            output.print_line(f"UNKNOWN: {message}")
        if not output.on_terminal():
            # Under cron the status line goes to /dev/null, and with the
            # configuration unknown no alert sink can report it: stderr is
            # what reaches the operator (cron mail, the journal).
            output.stderr.print(f"error: UNKNOWN: {message}", markup=False)
        raise typer.Exit(HealthCode.UNKNOWN) from None
    if as_json:
        output.print_json(report.as_dict())
    else:
        # Always one status line, even OK under cron: the monitoring-plugin
        # contract (Nagios, Icinga, Zabbix read it). Written plainly, so it
        # is never wrapped at a console width.
        worst = [check for check in report.checks if check.code is report.code]
        first_line = f"{report.code.name}: {report.status}"
        if report.code is not HealthCode.OK:
            first_line += " - " + "; ".join(check.summary for check in worst)
        output.print_line(state.redactor(first_line))
        if output.on_terminal() or state.verbose:
            rows = [
                [check.name, output.styled(check.code.name), check.summary]
                for check in report.checks
            ]
            output.stdout.print(output.table("", ["check", "status", "detail"], rows))
    raise typer.Exit(report.code)

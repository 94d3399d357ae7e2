"""The `formafriend-scheduler` command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from formafriend_scheduler import __version__
from formafriend_scheduler.logs import LogFormat

from . import config_cmd, db, demo, health, jobs, metrics, observe, preview, sample
from .state import AppState

EXIT_CODES = """\b
Exit codes of job commands:
  0    success, or nothing to do
  1    the job failed
  2    usage or configuration error
  3    finished, but some items failed (partial)
  75   locked by another live run, or MongoDB unreachable after retries: try again later
  130  interrupted by SIGINT (143: by SIGTERM)
health-check uses monitoring-plugin codes: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN."""

app = typer.Typer(
    name="formafriend-scheduler",
    help="Form-a-Friend v2 scheduler jobs, one stateless run per call, for cron or systemd timers."
    "\n\nExample: formafriend-scheduler monthly-invitations --dry-run",
    epilog=EXIT_CODES,
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        print(f"formafriend-scheduler {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    ctx: typer.Context,
    log_level: Annotated[
        str | None,
        typer.Option(
            help="debug, info, warning or error. Default: info on a terminal, warning otherwise."
        ),
    ] = None,
    log_format: Annotated[
        str, typer.Option(help="auto (text on a terminal, JSON lines otherwise), text or json.")
    ] = "auto",
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Print progress and results even under cron.")
    ] = False,
    env_file: Annotated[
        Path | None,
        typer.Option(
            help="Read KEY=VALUE settings from this file instead of ./.env "
            "(the environment still wins).",
            # Checked when the settings load: a configuration error (exit 2;
            # health-check's UNKNOWN, exit 3), named with the file.
            readable=False,
        ),
    ] = None,
    debug: Annotated[
        bool, typer.Option("--debug", help="Debug logging and tracebacks on errors.")
    ] = False,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    if log_format not in ("auto", "text", "json"):
        raise typer.BadParameter("must be auto, text or json", param_hint="--log-format")
    if log_level is not None and log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise typer.BadParameter("must be debug, info, warning or error", param_hint="--log-level")
    fmt: LogFormat = "text" if log_format == "text" else "json" if log_format == "json" else "auto"
    # A caller may hand in its own state through Click's `obj` (the tests, to
    # run a command on an injected clock); the options given here still apply.
    given = ctx.obj if isinstance(ctx.obj, AppState) else AppState()
    state = AppState(
        log_level=log_level,
        log_format=fmt,
        verbose=verbose,
        debug=debug,
        env_file=env_file,
        clock=given.clock,
    )
    state.configure_logging()
    ctx.obj = state
    ctx.call_on_close(state.close_stores)


app.command("monthly-invitations", epilog=EXIT_CODES)(jobs.monthly_invitations)
app.command("reminders", epilog=EXIT_CODES)(jobs.reminders)
app.command("cleanup", epilog=EXIT_CODES)(jobs.cleanup)
app.command("health-check")(health.health_check)
app.command("status")(observe.status)
app.command("history")(observe.history)
app.command("metrics")(metrics.metrics)
app.command("init-db")(db.init_db)
app.command("seed")(sample.seed_command)
app.command("demo")(demo.demo)
app.command("preview")(preview.preview)
app.add_typer(config_cmd.app, name="config")


def main() -> None:
    app()

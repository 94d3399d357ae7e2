"""demo: the whole monthly cycle in one command, no server needed."""

from __future__ import annotations

import logging
import secrets
import tempfile
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit, urlunsplit

import typer
from rich.panel import Panel

from formafriend_scheduler.config import Settings, isolated_settings, mask_url
from formafriend_scheduler.demo import DemoStep, run_demo
from formafriend_scheduler.store import connect

from . import output
from .observe import status_data
from .state import handle_errors, state_of

DEMO_DATABASE = "formafriend_demo"


def demo_uri(given: str | None) -> str:
    """In-process by default; on a real server, always its own database,
    whatever database the URI names (never the app's)."""
    if given is None:
        return f"mongomock://demo-{secrets.token_hex(4)}/{DEMO_DATABASE}"
    return urlunsplit(urlsplit(given)._replace(path="/" + DEMO_DATABASE))


@handle_errors
def demo(
    ctx: typer.Context,
    mongodb_uri: Annotated[
        str | None,
        typer.Option(
            help="Run on this server instead, always in its own database "
            f"({DEMO_DATABASE}), whatever database the URI names."
        ),
    ] = None,
    outbox: Annotated[
        Path | None, typer.Option(help="Folder for the .eml files (default: a new temporary one).")
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Use a database that already holds users.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the steps as JSON.")] = False,
) -> None:
    """Run the monthly cycle on sample data with simulated days: invitations,
    J+3 and J+7 reminders, cleanup, health check, status and history. Needs no
    server (an in-process database) and sends no e-mail (.eml files instead).

    Example: formafriend-scheduler demo
    """
    state = state_of(ctx)
    folder = outbox or Path(tempfile.mkdtemp(prefix="formafriend-demo-outbox-"))
    with tempfile.TemporaryDirectory(prefix="formafriend-demo-state-") as state_dir:
        # Defaults only: the operator's environment and .env (a real database,
        # Prometheus textfile, webhooks) must not leak into a demo.
        settings = isolated_settings(
            mongodb_uri=demo_uri(mongodb_uri),
            email_transport="file",
            email_outbox_dir=folder,
            state_dir=Path(state_dir),
        )
        state.use_settings(settings)  # its secrets (a password in --mongodb-uri) are masked
        if state.log_level is None and not state.verbose and not state.debug:
            # The panels tell the story; the events' info lines would bury them.
            logging.getLogger("formafriend_scheduler").setLevel(logging.WARNING)
        steps, summary, history = _run(settings, folder, force, show=not as_json)
    if as_json:
        output.print_json(
            {
                "database": mask_url(settings.mongodb_uri) if mongodb_uri else "in-process",
                "outbox": str(folder),
                "steps": [step.as_dict() for step in steps],
                "status": summary,
                "history": history,
            }
        )
        return
    order = {step.job_id: index for index, step in enumerate(steps)}
    rows = [
        [
            output.when(r.get("startedAt")),
            r.get("type"),
            output.styled(str(r.get("status"))),
            r.get("message"),
        ]
        for r in sorted(history, key=lambda record: order.get(record["_id"], -1))
    ]
    output.stdout.print(
        output.table("History", ["started (simulated)", "job", "status", "message"], rows)
    )
    output.stdout.print(
        f"Jobs recorded: {summary['metrics']['totalJobsRun']}; last health check: "
        f"{summary['lastHealthCheck']['status'] if summary['lastHealthCheck'] else 'none'}"
    )
    output.stdout.print(
        f"The e-mails are in [bold]{folder}[/bold] (open any .eml in a mail client)."
    )


def _run(
    settings: Settings, folder: Path, force: bool, *, show: bool
) -> tuple[list[DemoStep], dict[str, Any], list[dict[str, Any]]]:
    """The demo's steps (shown as panels as they happen), then the status and history."""

    def on_step(step: DemoStep) -> None:
        if show:
            output.stdout.print(
                Panel(
                    step.summary,
                    title=f"{step.title}  [dim]{output.when(step.at)}[/dim]",
                    title_align="left",
                )
            )

    store = connect(settings)
    try:
        steps = run_demo(settings, store, folder, on_step, force=force)
        return steps, status_data(store, steps[-1].at, settings.timezone), store.jobs.find(limit=50)
    finally:
        store.close()

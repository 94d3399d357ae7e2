"""config show / config check."""

from __future__ import annotations

from typing import Annotated

import typer

from formafriend_scheduler.jobs.preview import checked_composer
from formafriend_scheduler.lifecycle.runner import Runner

from . import output
from .state import handle_errors, state_of

app = typer.Typer(
    help="Inspect and validate the configuration.\n\n"
    "Example: formafriend-scheduler --env-file /etc/formafriend-scheduler/env config check",
    no_args_is_help=True,
)
JsonOption = Annotated[bool, typer.Option("--json", help="Print as JSON.")]


@app.command("show")
@handle_errors
def show(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Print the effective configuration (environment, .env, defaults), secrets masked.

    Example: formafriend-scheduler config show --json
    """
    view = state_of(ctx).settings.public_view()
    if as_json:
        output.print_json(view)
        return
    rows = [[name, "" if value is None else value] for name, value in view.items()]
    output.stdout.print(output.table("", ["variable", "value"], rows))


@app.command("check")
@handle_errors
def check(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Validate the configuration and the override e-mail templates, ping
    MongoDB and compare clocks with the server.

    Exits 0 when all is well, 2 on invalid configuration or a template that
    fails to render or lacks the form or unsubscribe link (each file named),
    75 when MongoDB is unreachable, 1 when the clocks differ too much.

    Example: formafriend-scheduler config check
    """
    state = state_of(ctx)
    settings = state.settings
    checked_composer(settings, state.clock.now())  # TemplateProblems: exit 2
    store = state.store()
    try:
        latency = store.ping()
        Runner(settings, store, state.clock, state.events()).verify_clock()
    finally:
        store.close()
    templates = "checked" if settings.email_templates_dir else "packaged"
    result = {
        "configuration": "valid",
        "templates": templates,
        "mongodb": "reachable",
        "latencyMs": round(latency, 1),
    }
    if as_json:
        output.print_json(result)
    elif not state.quiet(as_json):
        output.stdout.print(
            f"configuration valid; templates {templates}; MongoDB reachable ({latency:.1f} ms); "
            "clocks agree",
            markup=False,
        )

"""preview: render a message to files, send nothing, write nothing to the database."""

from __future__ import annotations

import webbrowser
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from formafriend_scheduler.jobs.preview import preview as build_preview

from . import output
from .state import handle_errors, state_of


class KindChoice(StrEnum):
    invitation = "invitation"
    reminder_first = "reminder-first"
    reminder_second = "reminder-second"


class ToneChoice(StrEnum):
    friendly = "friendly"
    professional = "professional"
    fun = "fun"


@handle_errors
def preview(
    ctx: typer.Context,
    kind: Annotated[KindChoice, typer.Argument(help="Which message.")],
    tone: Annotated[
        ToneChoice | None,
        typer.Option(help="The tone (default: the user's, or friendly for the sample)."),
    ] = None,
    user: Annotated[
        str | None, typer.Option("--user", help="A user id: their real message (with --contact).")
    ] = None,
    contact: Annotated[
        str | None, typer.Option("--contact", help="One of that user's contacts, by e-mail.")
    ] = None,
    out: Annotated[
        Path, typer.Option("--out", help="Folder for the .eml, .html and .txt files.")
    ] = Path("formafriend-preview"),
    open_browser: Annotated[
        bool, typer.Option("--open", help="Open the HTML part in a browser.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Render the message that would go out, without sending it or writing to
    the database: the .eml, its HTML and text parts as files, and a summary.
    From the sample values, or from the database for --user and --contact.
    With SCHEDULER_EMAIL_TEMPLATES_DIR, every override template is checked
    first: one that fails to render or lacks the form or unsubscribe link
    is named, exit 2.

    Example: formafriend-scheduler preview reminder-first --tone fun --out /tmp/faf
    """
    if (user is None) != (contact is None):
        raise typer.BadParameter(
            "--user and --contact go together (a user id and one of their e-mails)"
        )
    state = state_of(ctx)
    store = state.store() if user is not None else None
    try:
        shown = build_preview(
            state.settings,
            kind.value,
            state.clock.now(),
            tone=tone.value if tone is not None else None,
            store=store,
            user_id=user,
            contact_email=contact,
        )
    finally:
        if store is not None:
            store.close()
    files = shown.write(out)
    summary = {**shown.summary(), "files": [str(path) for path in files]}
    if as_json:
        output.print_json(summary)
    else:
        rows = [["kind", kind.value], ["tone", shown.tone]]
        rows += [[name, value] for name, value in shown.headers().items()]
        rows += [["link", link] for link in shown.links]
        rows += [["size", f"{len(shown.composed.data):,} bytes"]]
        rows += [["file", str(path)] for path in files]
        output.stdout.print(output.table("", ["", "preview (nothing sent)"], rows))
    if open_browser and not webbrowser.open(files[1].resolve().as_uri()):
        # No browser this process can start (a server without a display):
        # say where the file is rather than pretend.
        output.stderr.print(f"no browser to open here; open {files[1].resolve()}", markup=False)

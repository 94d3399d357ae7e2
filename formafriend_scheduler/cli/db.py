"""init-db: ensure every index the scheduler relies on."""

from __future__ import annotations

from typing import Annotated

import typer

from formafriend_scheduler.store.indexes import ALL_INDEXES

from . import output
from .state import handle_errors, state_of


@handle_errors
def init_db(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Create the seed's indexes on users, contacts and invitations and the
    indexes of the scheduler's own collections. Safe to run again: existing
    indexes (under any name) are left as they are.

    Example: formafriend-scheduler init-db
    """
    state = state_of(ctx)
    store = state.store()
    try:
        states = store.indexes.ensure(ALL_INDEXES)
    finally:
        store.close()
    created = [s for s in states if s.created]
    if as_json:
        output.print_json(
            {
                "created": [s.spec.describe() for s in created],
                "present": [s.spec.describe() for s in states if not s.created],
            }
        )
        return
    if state.quiet(as_json):
        return
    rows = [[s.spec.describe(), "created" if s.created else "present"] for s in states]
    output.stdout.print(output.table("", ["index", "state"], rows))
    output.stdout.print(
        f"{len(created)} index(es) created, {len(states) - len(created)} already present."
    )

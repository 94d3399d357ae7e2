"""seed: sample data for trials and benchmarks."""

from __future__ import annotations

from typing import Annotated

import typer

from formafriend_scheduler.errors import DatabaseNotEmpty
from formafriend_scheduler.seed import SeedPlan, seed

from . import output
from .state import handle_errors, state_of


@handle_errors
def seed_command(
    ctx: typer.Context,
    users: Annotated[int, typer.Option(min=1, help="How many users.")] = 50,
    contacts_per_user: Annotated[int, typer.Option(min=0, help="Contacts per user.")] = 20,
    random_seed: Annotated[int, typer.Option("--seed", help="Same seed, same data.")] = 42,
    force: Annotated[
        bool, typer.Option("--force", help="Add to a database that already holds users.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Generate sample users (seven timezones, half with their own send day and
    time) and contacts in every state (one in ten cannot be invited) into
    MONGODB_URI. Refuses a database that already holds users unless --force.

    Example: formafriend-scheduler seed --users 5000 --contacts-per-user 20 --seed 7
    """
    state = state_of(ctx)
    store = state.store()
    try:
        if not force and not store.is_empty():
            raise DatabaseNotEmpty(f"the database {store.database_name} already holds users")
        report = seed(
            store,
            SeedPlan(users=users, contacts_per_user=contacts_per_user, seed=random_seed),
            state.clock.now(),
        )
        store.indexes.ensure()
    finally:
        store.close()
    result = {
        "users": report.users,
        "contacts": report.contacts,
        "eligibleContacts": report.eligible_contacts,
    }
    if as_json:
        output.print_json(result)
    elif not state.quiet(as_json):
        output.stdout.print(
            f"seeded {report.users} users and {report.contacts} contacts "
            f"({report.eligible_contacts} can be invited) into {store.database_name}",
            markup=False,
        )

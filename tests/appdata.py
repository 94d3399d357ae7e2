"""The app's data as a deployment has it: its own indexes (data-model.md,
"Existing indexes"), which every write pays for, beside the scheduler's. Used
by the benchmarks and by the tests that count what a run costs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from formafriend_scheduler.store.indexes import ALL_INDEXES, IndexSpec

APP_OWN_INDEXES: tuple[IndexSpec, ...] = (
    IndexSpec("users", (("preferences.sendDay", 1), ("preferences.timezone", 1))),
    IndexSpec(
        "users",
        (("metadata.isActive", 1), ("preferences.optedOut", 1), ("preferences.sendDay", 1)),
    ),
    IndexSpec("contacts", (("ownerId", 1), ("email", 1)), unique=True),
    IndexSpec("contacts", (("isActive", 1), ("optedOut", 1))),
    IndexSpec(
        "contacts",
        (("ownerId", 1), ("isActive", 1), ("status", 1), ("tracking.responseRate", -1)),
    ),
    IndexSpec("contacts", (("bounceCount", 1), ("lastBounceAt", -1))),
    IndexSpec("invitations", (("token", 1),), unique=True),
    IndexSpec("invitations", (("fromUserId", 1), ("toEmail", 1), ("month", 1)), unique=True),
    IndexSpec("invitations", (("month", 1), ("status", 1))),
    IndexSpec("invitations", (("expiresAt", 1),)),
    IndexSpec("invitations", (("status", 1), ("tracking.sentAt", -1))),
    IndexSpec("invitations", (("tracking.sentAt", 1), ("status", 1), ("expiresAt", 1))),
)


def indexes_of(collection: str) -> list[IndexSpec]:
    """The app's and the scheduler's indexes on `collection`, each key pattern once."""
    seen: dict[tuple[Any, ...], IndexSpec] = {}
    for spec in (*APP_OWN_INDEXES, *ALL_INDEXES):
        if spec.collection == collection:
            seen.setdefault(spec.keys, spec)
    return list(seen.values())


def create_indexes(db: Any, collection: str, specs: Sequence[IndexSpec]) -> None:
    for spec in specs:
        db[collection].create_index(list(spec.keys), unique=spec.unique)

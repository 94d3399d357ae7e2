"""The indexes the scheduler relies on, and how to ensure or check them.

An index counts as present when one with the same key pattern exists, whatever
its name: the app may have created it under another name, and creating it a
second time would fail on the name or options, not help.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pymongo.database import Database

from formafriend_scheduler.errors import StoreError
from formafriend_scheduler.store.base import Document
from formafriend_scheduler.store.retry import RetryPolicy, transient

Keys = tuple[tuple[str, int | str], ...]  # str: "text", "hashed", "2dsphere"


@dataclass(frozen=True)
class IndexSpec:
    collection: str
    keys: Keys
    unique: bool = False
    # On one of the app's collections, but not declared by the app's Mongoose
    # schemas: the app's `syncIndexes()` drops it; `init-db` restores it.
    added_to_app: bool = False

    def describe(self) -> str:
        pattern = ", ".join(f"{field}: {direction}" for field, direction in self.keys)
        return f"{self.collection} {{ {pattern} }}" + (" unique" if self.unique else "")


# The seed's list (data-model.md) plus the app's unique keys that make
# invitations exactly-once, and what cleanup's expiry scan needs.
APP_INDEXES: tuple[IndexSpec, ...] = (
    IndexSpec("users", (("metadata.isActive", 1), ("preferences.sendDay", 1)), added_to_app=True),
    IndexSpec("users", (("preferences.sendDay", 1), ("preferences.timezone", 1))),
    IndexSpec("contacts", (("ownerId", 1), ("email", 1)), unique=True),
    IndexSpec("contacts", (("ownerId", 1), ("isActive", 1), ("optedOut", 1)), added_to_app=True),
    IndexSpec("invitations", (("month", 1), ("status", 1))),
    IndexSpec("invitations", (("tracking.sentAt", 1), ("status", 1), ("expiresAt", 1))),
    IndexSpec("invitations", (("reminders.type", 1),), added_to_app=True),
    IndexSpec("invitations", (("fromUserId", 1), ("toEmail", 1), ("month", 1)), unique=True),
    IndexSpec("invitations", (("token", 1),), unique=True),
    IndexSpec("invitations", (("expiresAt", 1),)),
    # Not in the seed's list: pages through one month's queued invitations in
    # _id order without sorting them all (monthly-invitations' sending pass).
    IndexSpec("invitations", (("month", 1), ("status", 1), ("_id", 1)), added_to_app=True),
)

SCHEDULER_INDEXES: tuple[IndexSpec, ...] = (
    IndexSpec("scheduler_jobs", (("type", 1), ("startedAt", -1))),
    IndexSpec("scheduler_jobs", (("status", 1), ("startedAt", -1))),
    IndexSpec("scheduler_jobs", (("startedAt", -1),)),
    IndexSpec("scheduler_health", (("checkedAt", -1),)),
    IndexSpec("scheduler_metrics", (("recordedAt", 1),)),
    IndexSpec("scheduler_outbox", (("state", 1), ("updatedAt", 1))),
    IndexSpec("scheduler_cycles", (("completedAt", 1),)),
    IndexSpec("scheduler_claims", (("scope", 1), ("n", -1))),
    IndexSpec("scheduler_claims", (("at", 1),)),
)

ALL_INDEXES = APP_INDEXES + SCHEDULER_INDEXES
# What exactly-once creation rests on: checked (and created if missing) by
# every monthly run, not only by init-db.
INVITATION_KEYS = tuple(
    spec for spec in APP_INDEXES if spec.collection == "invitations" and spec.unique
)


@dataclass(frozen=True)
class IndexState:
    spec: IndexSpec
    present: bool
    created: bool = False
    not_unique: bool = False  # the keys are indexed, but without the uniqueness we rely on


def _direction(value: Any) -> int | str:
    # Servers report 1 as 1, 1.0 or 1 (Int64); special indexes by name.
    return int(value) if isinstance(value, int | float) else str(value)


def _key_patterns(db: Database[Document], collection: str) -> dict[Keys, dict[str, Any]]:
    info = db[collection].index_information()
    return {
        tuple((str(field), _direction(value)) for field, value in details["key"]): details
        for details in info.values()
    }


class IndexManager:
    def __init__(self, db: Database[Document], retry_policy: RetryPolicy) -> None:
        self._db = db
        self.retry_policy = retry_policy

    @transient
    def check(self, specs: tuple[IndexSpec, ...] = ALL_INDEXES) -> list[IndexState]:
        return self._states(specs)

    def _states(self, specs: tuple[IndexSpec, ...]) -> list[IndexState]:
        patterns: dict[str, dict[Keys, dict[str, Any]]] = {}
        states = []
        for spec in specs:
            if spec.collection not in patterns:
                patterns[spec.collection] = _key_patterns(self._db, spec.collection)
            existing = patterns[spec.collection].get(spec.keys)
            not_unique = existing is not None and spec.unique and not existing.get("unique")
            states.append(
                IndexState(
                    spec, present=existing is not None and not not_unique, not_unique=not_unique
                )
            )
        return states

    @transient
    def ensure(self, specs: tuple[IndexSpec, ...] = ALL_INDEXES) -> list[IndexState]:
        """Create each missing index; running it again changes nothing."""
        states = []
        for state in self._states(specs):
            if state.present:
                states.append(state)
                continue
            if state.not_unique:
                raise StoreError(
                    f"{state.spec.describe()}: the keys are indexed without `unique`; "
                    "replace that index with a unique one (duplicates must go first)"
                )
            self._db[state.spec.collection].create_index(
                list(state.spec.keys), unique=state.spec.unique
            )
            states.append(IndexState(state.spec, present=True, created=True))
        return states

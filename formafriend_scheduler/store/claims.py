"""`scheduler_claims`: who won the n-th claim of a thing, decided by a unique `_id`.

A conditional update ("take it if it is free or stale") is atomic on MongoDB,
but not on every server that speaks its protocol: FerretDB v1 reads the
matching documents and writes them back in two steps, so two clients racing
for the same stale lease or outbox message can both "win" (measured: four
threads racing for 60 documents reported 61 to 69 wins with `update_one`).
An insert of a unique `_id` is atomic everywhere. So every takeover first
inserts `<scope>#<n>`, its number being one more than the last known claim;
only the client whose insert succeeds may then write the claimed document.

Only takeovers go through here: the first claim of a lease or a message is
the insert of its own document, which is unique already.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo import DESCENDING

from formafriend_scheduler.store.base import Document, Insert, Repository
from formafriend_scheduler.store.retry import transient


def claim_id(scope: str, number: int) -> str:
    return f"{scope}#{number}"


class ClaimLedger(Repository):
    collection_name = "scheduler_claims"

    @transient
    def take(self, wanted: dict[str, int], by: str, now: datetime, **details: Any) -> set[str]:
        """Try to win claim number `wanted[scope]` of each scope for claimant
        `by`; the scopes won. A retry of an attempt whose reply was lost finds
        its own claim and counts it as won."""
        if not wanted:
            return set()
        inserts = [
            Insert(
                {
                    "_id": claim_id(scope, number),
                    "scope": scope,
                    "n": number,
                    "by": by,
                    "at": now,
                    **details,
                }
            )
            for scope, number in wanted.items()
        ]
        outcome = self.tolerant_bulk_write(inserts)
        scopes = list(wanted)
        lost = {scopes[index] for index in outcome.duplicates} | {
            scopes[index] for index in outcome.errors
        }
        if lost:
            mine = self.collection.find(
                {"_id": {"$in": [claim_id(s, wanted[s]) for s in lost]}, "by": by}, {"scope": 1}
            )
            lost -= {str(doc["scope"]) for doc in mine}
        return set(scopes) - lost

    @transient
    def latest(self, scopes: list[str]) -> dict[str, Document]:
        """The highest-numbered claim of each scope that has any."""
        if not scopes:
            return {}
        found: dict[str, Document] = {}
        cursor = self.collection.find({"scope": {"$in": scopes}}).sort("n", DESCENDING)
        for doc in cursor:
            found.setdefault(str(doc["scope"]), doc)
        return found

    @transient
    def prune(self, before: datetime, limit: int) -> int:
        return self.batched_delete({"at": {"$lt": before}}, limit)

    @transient
    def count_prunable(self, before: datetime) -> int:
        return self.collection.count_documents({"at": {"$lt": before}})


def number_of(doc: dict[str, Any] | None, field: str) -> int:
    """A claim counter from a document that may be hand-edited or missing."""
    try:
        return int((doc or {}).get(field) or 0)
    except (TypeError, ValueError):
        return 0

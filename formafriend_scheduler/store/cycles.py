"""`scheduler_cycles`: one document per (user, month) whose monthly cycle ran.

The app has no field that says "this user's cycle for month M is done" (its
`metadata.lastMonthlyJobRun` is a date, which a backfill of an older month
would push into a later month's window), so the scheduler keeps its own
marker, `_id` = "<user id>:<YYYY-MM>". Inserting it is the one atomic step
that makes a cycle count once.

Beside the markers, one document `_id` = "switch-over" keeps when this
scheduler first ran monthly-invitations on the database: invitations of a
month created before then were created by the Node.js service, which had
counted that user's cycle itself. It has no `completedAt`, so cleanup never
prunes it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo import ASCENDING
from pymongo.errors import DuplicateKeyError

from formafriend_scheduler.store.base import Insert
from formafriend_scheduler.store.records import HistoryRepository
from formafriend_scheduler.store.retry import transient

SWITCH_OVER = "switch-over"


def cycle_key(user_id: Any, month: str) -> str:
    return f"{user_id}:{month}"


class CycleRepository(HistoryRepository):
    collection_name = "scheduler_cycles"
    timestamp_field = "completedAt"

    @transient
    def completed(self, user_ids: list[Any], month: str) -> set[Any]:
        keys = {cycle_key(user_id, month): user_id for user_id in user_ids}
        found = self.collection.find({"_id": {"$in": list(keys)}}, {"_id": 1}).batch_size(len(keys))
        return {keys[doc["_id"]] for doc in found}

    @transient
    def complete(self, user_ids: list[Any], month: str, run_id: str, now: datetime) -> set[Any]:
        """Mark the cycles done; returns the users whose marker this call created."""
        ops = [
            Insert(
                {
                    "_id": cycle_key(user_id, month),
                    "userId": user_id,
                    "month": month,
                    "runId": run_id,
                    "completedAt": now,
                }
            )
            for user_id in user_ids
        ]
        outcome = self.tolerant_bulk_write(ops)
        refused = set(outcome.duplicates) | set(outcome.errors)
        return {user_id for index, user_id in enumerate(user_ids) if index not in refused}

    @transient
    def switch_over(self, now: datetime, *, record: bool) -> datetime:
        """When this scheduler took over monthly-invitations on this database.

        Recorded once, by the first run that records it: then `now`, or the
        oldest cycle marker if markers already exist (a database that ran an
        earlier version of this scheduler). A dry run reads it without
        recording it (and is told `now`)."""
        recorded = self._recorded_switch_over()
        if recorded is not None:
            return recorded
        oldest = self.collection.find_one(
            {"completedAt": {"$exists": True}},
            {"completedAt": 1},
            sort=[("completedAt", ASCENDING)],
        )
        at = now
        if oldest is not None and isinstance(oldest.get("completedAt"), datetime):
            at = min(now, oldest["completedAt"])
        if not record:
            return at
        try:
            self.collection.insert_one({"_id": SWITCH_OVER, "at": at})
        except DuplicateKeyError:  # another run recorded it first: theirs stands
            return self._recorded_switch_over() or at
        return at

    def _recorded_switch_over(self) -> datetime | None:
        found = self.collection.find_one({"_id": SWITCH_OVER})
        at = found.get("at") if found is not None else None
        return at if isinstance(at, datetime) else None

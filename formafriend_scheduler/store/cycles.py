"""`scheduler_cycles`: one document per (user, month) whose monthly cycle ran.

The app has no field that says "this user's cycle for month M is done" (its
`metadata.lastMonthlyJobRun` is a date, which a backfill of an older month
would push into a later month's window), so the scheduler keeps its own
marker, `_id` = "<user id>:<YYYY-MM>". Inserting it is the one atomic step
that makes a cycle count once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from formafriend_scheduler.store.base import Insert
from formafriend_scheduler.store.records import HistoryRepository
from formafriend_scheduler.store.retry import transient


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

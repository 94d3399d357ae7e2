"""`scheduler_alerts`: which alerts are active and when each was last sent, so
an alert that keeps firing is not sent on every run, and one that clears
sends a resolved event. `scheduler_counters`: monotonic totals per job type
for Prometheus `_total` metrics (each run is a new process)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo.errors import DuplicateKeyError

from formafriend_scheduler.store.base import Document, Repository
from formafriend_scheduler.store.retry import transient


class AlertStateRepository(Repository):
    collection_name = "scheduler_alerts"

    @transient
    def fire(self, alert: Document, now: datetime, resend_before: datetime) -> bool:
        """Record a firing alert; True when it should be sent now: it is new,
        was resolved since, changed severity, or was last sent before
        `resend_before`."""
        fields = {**alert, "active": True, "lastSeenAt": now}
        try:
            self.collection.update_one(
                {
                    "_id": alert["key"],
                    "$or": [
                        {"active": {"$ne": True}},
                        {"severity": {"$ne": alert["severity"]}},
                        {"lastSentAt": {"$lte": resend_before}},
                    ],
                },
                {"$set": {**fields, "lastSentAt": now}, "$inc": {"sent": 1}},
                upsert=True,
            )
            return True
        except DuplicateKeyError:  # active and sent recently: only note it is still there
            self.collection.update_one({"_id": alert["key"]}, {"$set": fields})
            return False

    @transient
    def active(self, scopes: list[str]) -> list[Document]:
        return list(self.collection.find({"active": True, "scope": {"$in": scopes}}))

    @transient
    def resolve(self, keys: list[str], now: datetime) -> int:
        if not keys:
            return 0
        result = self.collection.update_many(
            {"_id": {"$in": keys}, "active": True}, {"$set": {"active": False, "resolvedAt": now}}
        )
        return result.modified_count


class CounterRepository(Repository):
    collection_name = "scheduler_counters"

    @transient
    def add(self, job_type: str, increments: dict[str, int | float]) -> None:
        self.collection.update_one({"_id": job_type}, {"$inc": increments}, upsert=True)

    @transient
    def all(self) -> dict[str, dict[str, Any]]:
        return {str(doc["_id"]): doc for doc in self.collection.find()}

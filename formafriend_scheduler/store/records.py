"""The scheduler's own history: `scheduler_jobs`, `scheduler_health`, `scheduler_metrics`."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, ClassVar

from pymongo import DESCENDING

from formafriend_scheduler.store.base import Document, Repository
from formafriend_scheduler.store.retry import transient

JOB_STATUSES = ("running", "success", "partial", "failed", "interrupted", "abandoned", "skipped")


class HistoryRepository(Repository):
    """A collection of timestamped records that `cleanup` prunes by age."""

    timestamp_field: ClassVar[str]
    never_prune: ClassVar[Document] = {}

    def _older_than(self, before: datetime) -> Document:
        return {self.timestamp_field: {"$lt": before}, **self.never_prune}

    @transient
    def insert(self, record: Document) -> None:
        self.collection.insert_one(record)

    @transient
    def prune(self, before: datetime, limit: int) -> int:
        return self.batched_delete(self._older_than(before), limit)

    @transient
    def count_prunable(self, before: datetime) -> int:
        return self.collection.count_documents(self._older_than(before))


class JobRepository(HistoryRepository):
    """Job records. A run writes its own record only while it holds the lease
    token recorded in it (`lease.token`), so a run that lost its lease cannot
    overwrite what its successor decided."""

    collection_name = "scheduler_jobs"
    timestamp_field = "startedAt"
    never_prune: ClassVar[Document] = {"status": {"$ne": "running"}}

    @transient
    def update_running(self, run_id: str, token: int, fields: Document) -> bool:
        result = self.collection.update_one(
            {"_id": run_id, "lease.token": token, "status": "running"}, {"$set": fields}
        )
        return result.matched_count == 1

    @transient
    def finish(
        self, run_id: str, token: int, fields: Document, from_statuses: Iterable[str]
    ) -> bool:
        result = self.collection.update_one(
            {"_id": run_id, "lease.token": token, "status": {"$in": list(from_statuses)}},
            {"$set": fields},
        )
        return result.matched_count == 1

    @transient
    def append_events(self, run_id: str, events: list[Document]) -> None:
        """Events that came after the outcome was written (end-of-run alerts)."""
        if events:
            self.collection.update_one({"_id": run_id}, {"$push": {"events": {"$each": events}}})

    @transient
    def mark_abandoned(self, run_id: str, now: datetime, reason: str) -> bool:
        result = self.collection.update_one(
            {"_id": run_id, "status": "running"},
            {
                "$set": {
                    "status": "abandoned",
                    "finishedAt": now,
                    "error": {"class": "Abandoned", "message": reason},
                }
            },
        )
        return result.modified_count == 1

    @transient
    def get(self, run_id: str) -> Document | None:
        return self.collection.find_one({"_id": run_id})

    @transient
    def running(self) -> list[Document]:
        return list(self.collection.find({"status": "running"}).sort("startedAt", DESCENDING))

    @transient
    def find(
        self,
        *,
        job_type: str | None = None,
        status: str | None = None,
        since: datetime | None = None,
        limit: int = 20,
    ) -> list[Document]:
        query: dict[str, Any] = {}
        if job_type:
            query["type"] = job_type
        if status:
            query["status"] = status
        if since:
            query["startedAt"] = {"$gte": since}
        cursor = self.collection.find(query, {"events": 0}).sort("startedAt", DESCENDING)
        return list(cursor.limit(limit))

    @transient
    def last_of_type(
        self,
        job_type: str,
        statuses: Iterable[str] | None = None,
        *,
        include_dry_runs: bool = True,
    ) -> Document | None:
        query: dict[str, Any] = {"type": job_type}
        if statuses is not None:
            query["status"] = {"$in": list(statuses)}
        if not include_dry_runs:  # a dry run proves nothing was sent
            query["options.dry_run"] = {"$ne": True}
        return self.collection.find_one(query, {"events": 0}, sort=[("startedAt", DESCENDING)])

    @transient
    def first_started(self) -> datetime | None:
        """When the scheduler first ran anything here (its oldest job record)."""
        doc = self.collection.find_one({}, {"startedAt": 1}, sort=[("startedAt", 1)])
        value = doc.get("startedAt") if doc else None
        return value if isinstance(value, datetime) else None

    @transient
    def count_by_status(self, since: datetime | None = None) -> dict[str, int]:
        base: dict[str, Any] = {"startedAt": {"$gte": since}} if since else {}
        return {
            status: self.collection.count_documents({**base, "status": status})
            for status in JOB_STATUSES
        }


class HealthRepository(HistoryRepository):
    collection_name = "scheduler_health"
    timestamp_field = "checkedAt"

    @transient
    def latest(self) -> Document | None:
        return self.collection.find_one({}, sort=[("checkedAt", DESCENDING)])


class MetricsRepository(HistoryRepository):
    collection_name = "scheduler_metrics"
    timestamp_field = "recordedAt"

    @transient
    def since(self, moment: datetime) -> list[Document]:
        """Per-run metrics since `moment`, oldest first (bounded by the retention)."""
        cursor = self.collection.find({"recordedAt": {"$gte": moment}}).sort("recordedAt", 1)
        return list(cursor)

"""`scheduler_locks`: one lease document per job type, with a fencing token."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from formafriend_scheduler.clock import to_utc
from formafriend_scheduler.store.base import Document, Repository
from formafriend_scheduler.store.retry import transient


@dataclass(frozen=True)
class LockHolder:
    job_type: str
    run_id: str
    host: str
    pid: int
    token: int
    acquired_at: datetime
    expires_at: datetime

    @classmethod
    def from_document(cls, doc: Document) -> LockHolder | None:
        if not doc.get("runId"):
            return None
        return cls(
            job_type=str(doc["_id"]),
            run_id=str(doc["runId"]),
            host=str(doc.get("host", "?")),
            pid=int(doc.get("pid") or 0),
            token=int(doc.get("token") or 0),
            acquired_at=to_utc(doc["acquiredAt"]),
            expires_at=to_utc(doc["expiresAt"]),
        )


@dataclass(frozen=True)
class Grant:
    """The answer to an acquisition attempt.

    granted: the caller now holds the lease with `token`.
    previous: the holder whose lease had expired and was taken over.
    holder: when refused, the live holder.
    """

    granted: bool
    token: int = 0
    previous: LockHolder | None = None
    holder: LockHolder | None = None


class LockRepository(Repository):
    collection_name = "scheduler_locks"

    @transient
    def try_acquire(
        self, job_type: str, run_id: str, host: str, pid: int, now: datetime, ttl: timedelta
    ) -> Grant:
        free_or_expired = {
            "_id": job_type,
            "$or": [{"runId": None}, {"expiresAt": {"$lte": now}}],
        }
        grant = {
            "$set": {
                "runId": run_id,
                "host": host,
                "pid": pid,
                "acquiredAt": now,
                "renewedAt": now,
                "expiresAt": now + ttl,
            },
            "$inc": {"token": 1},
        }
        try:
            # One atomic step: it matches only a free or expired lock; on a held
            # lock the upsert's insert collides with the existing _id.
            before = self.collection.find_one_and_update(
                free_or_expired, grant, upsert=True, return_document=ReturnDocument.BEFORE
            )
        except DuplicateKeyError:
            current = self.collection.find_one({"_id": job_type})
            holder = LockHolder.from_document(current) if current else None
            if holder is not None and holder.run_id == run_id:
                # Our own grant, whose reply was lost and whose attempt was retried.
                return Grant(granted=True, token=holder.token)
            return Grant(granted=False, holder=holder)
        if before is None:
            return Grant(granted=True, token=1)
        return Grant(
            granted=True,
            token=int(before.get("token") or 0) + 1,
            previous=LockHolder.from_document(before),
        )

    @transient
    def renew(self, job_type: str, run_id: str, token: int, now: datetime, ttl: timedelta) -> bool:
        result = self.collection.update_one(
            {"_id": job_type, "runId": run_id, "token": token},
            {"$set": {"renewedAt": now, "expiresAt": now + ttl}},
        )
        return result.matched_count == 1

    @transient
    def release(self, job_type: str, run_id: str, token: int, now: datetime) -> bool:
        result = self.collection.update_one(
            {"_id": job_type, "runId": run_id, "token": token},
            {
                "$set": {"runId": None, "lastRunId": run_id, "releasedAt": now, "expiresAt": now},
                "$unset": {"host": "", "pid": ""},
            },
        )
        return result.matched_count == 1

    @transient
    def holders(self) -> list[LockHolder]:
        """Every lock currently held (live or past its expiry)."""
        found = []
        for doc in self.collection.find({"runId": {"$nin": [None, ""]}}):
            holder = _safe_holder(doc)
            if holder is not None:
                found.append(holder)
        return found

    @transient
    def holder_of(self, job_type: str) -> LockHolder | None:
        doc = self.collection.find_one({"_id": job_type})
        return _safe_holder(doc) if doc else None


def _safe_holder(doc: dict[str, Any]) -> LockHolder | None:
    try:
        return LockHolder.from_document(doc)
    except (KeyError, TypeError, ValueError):
        return None  # a hand-edited or foreign document: not a lock we can describe

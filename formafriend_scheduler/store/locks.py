"""`scheduler_locks`: one lease document per job type, with a fencing token."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pymongo.errors import DuplicateKeyError

from formafriend_scheduler.clock import to_utc
from formafriend_scheduler.store.base import DatabaseHandle, Document, Repository
from formafriend_scheduler.store.claims import ClaimLedger, number_of
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
    """Acquisition: the first grant inserts the lock document (unique `_id`);
    every later grant (of a free or expired lock) first wins its token in the
    claim ledger, then writes the document. So two runs racing for an expired
    lease never both get it, even on a server whose conditional updates are
    not atomic (see store.claims)."""

    collection_name = "scheduler_locks"

    def __init__(self, handle: DatabaseHandle, ledger: ClaimLedger) -> None:
        super().__init__(handle)
        self._ledger = ledger

    @transient
    def try_acquire(
        self, job_type: str, run_id: str, host: str, pid: int, now: datetime, ttl: timedelta
    ) -> Grant:
        fields = {
            "runId": run_id,
            "host": host,
            "pid": pid,
            "acquiredAt": now,
            "renewedAt": now,
            "expiresAt": now + ttl,
        }
        current = self._current(job_type)
        if current is None:
            try:
                self.collection.insert_one({"_id": job_type, **fields, "token": 1})
                return Grant(granted=True, token=1)
            except DuplicateKeyError:
                current = self._current(job_type)
                if current is None:  # deleted again at once: leave it to the next run
                    return Grant(granted=False)
        token = number_of(current, "token")
        holder = _safe_holder(current)
        if holder is not None and holder.run_id == run_id:
            # Our own grant, whose reply was lost and whose attempt was retried.
            return Grant(granted=True, token=token)
        if holder is not None and holder.expires_at > now:
            return Grant(granted=False, holder=holder)
        scope = f"lock:{job_type}"
        if not self._ledger.take({scope: token + 1}, run_id, now, expiresAt=now + ttl):
            return Grant(granted=False, holder=_safe_holder(self._current(job_type) or {}))
        # Winning token + 1 in the ledger entitles us to replace any document
        # at or below `token` (one whose grant was won but never written too).
        written = self.collection.update_one(
            {"_id": job_type, "$or": [{"token": {"$lte": token}}, {"token": {"$exists": False}}]},
            {"$set": {**fields, "token": token + 1}},
        )
        if written.matched_count != 1:  # the document moved on meanwhile
            return Grant(granted=False, holder=_safe_holder(self._current(job_type) or {}))
        return Grant(granted=True, token=token + 1, previous=holder)

    def _current(self, job_type: str) -> Document | None:
        """The lock as its latest grant left it: a ledger grant newer than the
        document's token was won by a run that has not (or never) written it."""
        doc = self.collection.find_one({"_id": job_type})
        if doc is None:
            return None
        claim = self._ledger.latest([f"lock:{job_type}"]).get(f"lock:{job_type}")
        if claim is not None and number_of(claim, "n") > number_of(doc, "token"):
            return {
                "_id": job_type,
                "runId": claim.get("by"),
                "token": claim.get("n"),
                "acquiredAt": claim.get("at"),
                "expiresAt": claim.get("expiresAt"),
            }
        return doc

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

"""The app's `invitations` collection (fields per data-model.md)."""

from __future__ import annotations

from datetime import datetime, timedelta

from formafriend_scheduler.store.base import Document, Repository
from formafriend_scheduler.store.retry import transient

# Statuses an invitation never leaves by expiry: answered, withdrawn, or done.
NOT_EXPIRABLE = ("submitted", "cancelled", "expired")
# The app's default lifetime, which a document without `expiresAt` has.
APP_DEFAULT_LIFETIME = timedelta(days=60)


def expires_before(moment: datetime) -> Document:
    """`expiresAt` before `moment`; without `expiresAt`, creation + 60 days (the
    app's default, from `createdAt` or else `tracking.createdAt`)."""
    created_before = moment - APP_DEFAULT_LIFETIME
    return {
        "$or": [
            {"expiresAt": {"$lt": moment}},
            {"expiresAt": {"$exists": False}, "createdAt": {"$lt": created_before}},
            {
                "expiresAt": {"$exists": False},
                "createdAt": {"$exists": False},
                "tracking.createdAt": {"$lt": created_before},
            },
        ]
    }


def past_expiry(now: datetime) -> Document:
    """Invitations past their expiry that can still be marked expired.

    A missing status means the app's default (`queued`), so it is expirable.
    """
    return {"status": {"$nin": list(NOT_EXPIRABLE)}, **expires_before(now)}


def expired_before(cutoff: datetime) -> Document:
    return {"status": "expired", **expires_before(cutoff)}


class InvitationRepository(Repository):
    collection_name = "invitations"

    @transient
    def expire_batch(self, now: datetime, limit: int) -> int:
        return self.batched_update(
            past_expiry(now), {"$set": {"status": "expired", "updatedAt": now}}, limit
        )

    @transient
    def count_past_expiry(self, now: datetime) -> int:
        return self.collection.count_documents(past_expiry(now))

    @transient
    def delete_expired_batch(self, cutoff: datetime, limit: int) -> int:
        return self.batched_delete(expired_before(cutoff), limit)

    @transient
    def count_expired_before(self, cutoff: datetime) -> int:
        return self.collection.count_documents(expired_before(cutoff))

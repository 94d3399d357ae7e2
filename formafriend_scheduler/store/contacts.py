"""The app's `contacts` collection (fields per data-model.md)."""

from __future__ import annotations

from datetime import datetime

from formafriend_scheduler.store.base import Document, Repository
from formafriend_scheduler.store.retry import transient

PERMANENT_BOUNCE_COUNT = 5  # from this many bounces on, a contact is not mailed again


def temporary_bounce_to_reset(cutoff: datetime) -> Document:
    """Soft-bounced contacts whose last bounce is older than `cutoff`; without
    `lastBounceAt`, the last change to the contact (`updatedAt`) stands in."""
    return {
        "emailStatus": "bounced_temporary",
        "bounceCount": {"$gt": 0, "$lt": PERMANENT_BOUNCE_COUNT},
        "$or": [
            {"lastBounceAt": {"$lt": cutoff}},
            {"lastBounceAt": {"$exists": False}, "updatedAt": {"$lt": cutoff}},
        ],
    }


def bounced_but_active() -> Document:
    # `isActive` missing means the app's default, true.
    return {"bounceCount": {"$gte": PERMANENT_BOUNCE_COUNT}, "isActive": {"$ne": False}}


class ContactRepository(Repository):
    collection_name = "contacts"

    @transient
    def reset_temporary_bounces_batch(self, cutoff: datetime, now: datetime, limit: int) -> int:
        return self.batched_update(
            temporary_bounce_to_reset(cutoff),
            {
                "$set": {"bounceCount": 0, "emailStatus": "active", "updatedAt": now},
                "$unset": {"bounceReason": ""},
            },
            limit,
        )

    @transient
    def count_temporary_bounces_to_reset(self, cutoff: datetime) -> int:
        return self.collection.count_documents(temporary_bounce_to_reset(cutoff))

    @transient
    def deactivate_bounced_batch(self, now: datetime, limit: int) -> int:
        return self.batched_update(
            bounced_but_active(),
            {
                "$set": {
                    "isActive": False,
                    "status": "bounced",
                    "emailStatus": "bounced_permanent",
                    "updatedAt": now,
                }
            },
            limit,
        )

    @transient
    def count_bounced_but_active(self) -> int:
        return self.collection.count_documents(bounced_but_active())

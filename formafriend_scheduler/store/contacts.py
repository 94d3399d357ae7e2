"""The app's `contacts` collection (fields per data-model.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from formafriend_scheduler.store.base import BulkOutcome, Document, Repository, Update
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


# What the scheduler reads of a contact.
CONTACT_FIELDS = {
    "ownerId": 1,
    "email": 1,
    "firstName": 1,
    "lastName": 1,
    "contactUserId": 1,
    "status": 1,
    "emailStatus": 1,
    "bounceCount": 1,
    "optedOut": 1,
    "isActive": 1,
}


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

    @transient
    def of_owners(self, owner_ids: list[Any]) -> list[Document]:
        cursor = self.collection.find({"ownerId": {"$in": owner_ids}}, CONTACT_FIELDS)
        return list(cursor)

    @transient
    def by_owner_and_email(self, pairs: set[tuple[Any, str]]) -> dict[tuple[Any, str], Document]:
        if not pairs:
            return {}
        owners = list({owner for owner, _ in pairs})
        emails = list({email for _, email in pairs})
        found = self.collection.find(
            {"ownerId": {"$in": owners}, "email": {"$in": emails}}, CONTACT_FIELDS
        )
        by_pair = {}
        for doc in found:
            pair = (doc.get("ownerId"), str(doc.get("email", "")).lower())
            if pair in pairs:
                by_pair[pair] = doc
        return by_pair

    @transient
    def record_sent(self, contact_ids: list[Any], now: datetime) -> int:
        if not contact_ids:
            return 0
        result = self.collection.update_many(
            {"_id": {"$in": contact_ids}},
            {
                "$inc": {"tracking.invitationsSent": 1},
                "$set": {"tracking.lastSentAt": now, "updatedAt": now},
            },
        )
        return result.modified_count

    @transient
    def record_hard_bounces(self, bounces: list[tuple[Any, str]], now: datetime) -> BulkOutcome:
        """A permanent refusal of the address: the contact is not mailed again."""
        return self.tolerant_bulk_write(
            [
                Update(
                    {"_id": contact_id},
                    {
                        "$inc": {"bounceCount": 1},
                        "$set": {
                            "lastBounceAt": now,
                            "bounceReason": reason,
                            "emailStatus": "bounced_permanent",
                            "isActive": False,
                            "status": "bounced",
                            "updatedAt": now,
                        },
                    },
                )
                for contact_id, reason in bounces
            ]
        )

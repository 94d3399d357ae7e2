"""The app's `contacts` collection (fields per data-model.md)."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from formafriend_scheduler.store.base import (
    Document,
    Repository,
    Update,
    WriteReport,
    bson_time,
    counter_value,
)
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


def response_rate(responses: int, sent: int) -> int:
    """The app's `tracking.responseRate`: Math.round(responses / sent * 100),
    0 before anything was sent. JavaScript's Math.round is floor(x + 0.5) (a
    half goes up) on the same IEEE doubles Python uses."""
    return math.floor(responses / sent * 100 + 0.5) if sent > 0 else 0


def _tracking(contact: Document) -> Document:
    tracking = contact.get("tracking")
    return tracking if isinstance(tracking, dict) else {}


def sent_plan(contact: Document, now: datetime) -> tuple[Document, Document, bool]:
    """(guard, update, repairs) recording one more invitation sent to `contact`
    as read: the guard holds the counts the new ones are computed from."""
    tracking = contact.get("tracking")
    if not isinstance(tracking, dict) and "tracking" in contact:  # null, a string...
        fresh = {"invitationsSent": 1, "responsesReceived": 0, "responseRate": 0}
        update = {"$set": {"tracking": {**fresh, "lastSentAt": now}, "updatedAt": now}}
        return {"tracking": tracking}, update, True
    counts = _tracking(contact)
    raw_sent, raw_responses = counts.get("invitationsSent"), counts.get("responsesReceived")
    sent, responses = counter_value(raw_sent) or 0, counter_value(raw_responses) or 0
    malformed_sent = raw_sent is not None and counter_value(raw_sent) is None
    malformed_responses = raw_responses is not None and counter_value(raw_responses) is None
    fields: Document = {
        "tracking.invitationsSent": sent + 1,
        "tracking.responseRate": response_rate(responses, sent + 1),
        "tracking.lastSentAt": now,
        "updatedAt": now,
    }
    if malformed_responses:
        fields["tracking.responsesReceived"] = 0
    guard = {"tracking.invitationsSent": raw_sent, "tracking.responsesReceived": raw_responses}
    return guard, {"$set": fields}, malformed_sent or malformed_responses


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
    "tracking": 1,
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
    def record_sent(self, contacts: list[Document], now: datetime) -> WriteReport:
        """One more invitation sent to each contact (as read): `invitationsSent`
        + 1, `lastSentAt`, and `responseRate` recomputed as the app does, each
        written only while the counts it was computed from are unchanged (see
        compare_and_set); a malformed `tracking` is replaced."""
        sent_at = bson_time(now)
        return self.compare_and_set(
            contacts,
            lambda contact: sent_plan(contact, now),
            lambda before, current: _tracking(current).get("lastSentAt") == sent_at,
            CONTACT_FIELDS,
        )

    @transient
    def record_hard_bounces(self, bounces: list[tuple[Any, str]], now: datetime) -> WriteReport:
        """A permanent refusal of the address: the contact is not mailed again
        (guarded: a contact already marked so is not counted twice)."""
        return self.update_each(
            [
                (
                    contact_id,
                    Update(
                        {"_id": contact_id, "emailStatus": {"$ne": "bounced_permanent"}},
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
                    ),
                    False,
                )
                for contact_id, reason in bounces
            ]
        )

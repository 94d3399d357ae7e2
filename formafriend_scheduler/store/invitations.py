"""The app's `invitations` collection (fields per data-model.md)."""

from __future__ import annotations

import secrets
import string
from datetime import datetime, timedelta
from typing import Any

from bson import ObjectId
from pymongo import ASCENDING, DESCENDING

from formafriend_scheduler.store.base import (
    BulkOutcome,
    Document,
    Insert,
    Repository,
    Update,
    WriteReport,
    set_under,
)
from formafriend_scheduler.store.retry import transient

# Statuses an invitation never leaves by expiry: answered, withdrawn, or done.
NOT_EXPIRABLE = ("submitted", "cancelled", "expired")
# The app's default lifetime, which a document without `expiresAt` has.
APP_DEFAULT_LIFETIME = timedelta(days=60)


def effective_expiry(invitation: Document) -> datetime | None:
    """When the invitation expires: `expiresAt`, else the app's default of
    creation (`createdAt`, else `tracking.createdAt`) + 60 days; the same rule
    as the queries below."""
    expires_at = invitation.get("expiresAt")
    if isinstance(expires_at, datetime):
        return expires_at
    if "expiresAt" in invitation:
        return None  # present but not a date: malformed
    created_at = invitation.get("createdAt")
    if "createdAt" not in invitation:
        tracking = invitation.get("tracking")
        created_at = tracking.get("createdAt") if isinstance(tracking, dict) else None
    return created_at + APP_DEFAULT_LIFETIME if isinstance(created_at, datetime) else None


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


# Creating and sending (monthly cycle) ------------------------------------------

SHORT_CODE_ALPHABET = string.ascii_uppercase + string.digits
SHORT_CODE_LENGTH = 6


def short_code() -> str:
    """Six characters of SHORT_CODE_ALPHABET, uniformly random: one draw of a
    number below 36^6 read in base 36 (six secrets.choice calls cost 8 times more)."""
    number = secrets.randbelow(len(SHORT_CODE_ALPHABET) ** SHORT_CODE_LENGTH)
    digits = []
    for _ in range(SHORT_CODE_LENGTH):
        number, digit = divmod(number, len(SHORT_CODE_ALPHABET))
        digits.append(SHORT_CODE_ALPHABET[digit])
    return "".join(digits)


INVITATION_FIELDS = {
    "fromUserId": 1,
    "toEmail": 1,
    "toUserId": 1,
    "month": 1,
    "token": 1,
    "status": 1,
    "expiresAt": 1,
    "metadata": 1,
    "tracking": 1,
    "reminders": 1,
}


def new_invitation(
    *,
    from_user_id: Any,
    to_email: str,
    to_user_id: Any | None,
    month: str,
    template: str,
    custom_message: str | None,
    now: datetime,
    lifetime: timedelta,
) -> Document:
    """A queued invitation exactly as the app shapes it (data-model.md)."""
    doc: Document = {
        "_id": ObjectId(),
        "fromUserId": from_user_id,
        "toEmail": to_email.strip().lower(),
        "month": month,
        "token": secrets.token_hex(32),
        "shortCode": short_code(),
        "type": "user" if to_user_id is not None else "external",
        "status": "queued",
        "tracking": {"createdAt": now},
        "reminders": [],
        "expiresAt": now + lifetime,
        "metadata": {"template": template, "priority": "normal"},
        "createdAt": now,
        "updatedAt": now,
    }
    if to_user_id is not None:
        doc["toUserId"] = to_user_id
    if custom_message:
        doc["metadata"]["customMessage"] = custom_message
    return doc


REMINDABLE = ["sent", "opened", "started"]


def not_expired(now: datetime) -> Document:
    return {
        "$or": [
            {"expiresAt": {"$gt": now}},
            {"expiresAt": {"$exists": False}, "createdAt": {"$gt": now - APP_DEFAULT_LIFETIME}},
            {
                "expiresAt": {"$exists": False},
                "createdAt": {"$exists": False},
                "tracking.createdAt": {"$gt": now - APP_DEFAULT_LIFETIME},
            },
        ]
    }


def reminder_candidates(
    now: datetime, first_days: int, second_days: int, only: str | None = None
) -> Document:
    """Invitations that may be due a reminder: sent (or opened, started), not
    expired, old enough, and without a reminder of the type their age calls for."""
    first_cutoff = now - timedelta(days=first_days)
    second_cutoff = now - timedelta(days=second_days)
    first = {
        "tracking.sentAt": {"$lte": first_cutoff, "$gt": second_cutoff},
        "reminders.type": {"$nin": ["first", "second"]},
    }
    second = {"tracking.sentAt": {"$lte": second_cutoff}, "reminders.type": {"$ne": "second"}}
    by_age = {"first": [first], "second": [second]}.get(only or "", [first, second])
    return {"status": {"$in": REMINDABLE}, "$and": [not_expired(now), {"$or": by_age}]}


# A missing status is the app's default, `queued`.
QUEUED: Document = {"$in": ["queued", None]}


def queued_for(month: str, from_users: list[Any] | None = None) -> Document:
    query: Document = {"month": month, "status": QUEUED}
    if from_users is not None:
        query["fromUserId"] = {"$in": from_users}
    return query


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

    @transient
    def insert_new(self, docs: list[Document]) -> BulkOutcome:
        """Insert; a duplicate (user, e-mail, month) is refused by the app's
        unique index and reported in `duplicates`, never inserted twice.

        A document refused as a duplicate of itself (its fresh `_id` already
        there) was inserted by an earlier attempt of this call, whose reply
        was lost before the retry: it counts as inserted, not as a duplicate.
        """
        outcome = self.tolerant_bulk_write([Insert(doc) for doc in docs])
        if outcome.duplicates:
            ids = [docs[index]["_id"] for index in outcome.duplicates]
            ours = {doc["_id"] for doc in self.collection.find({"_id": {"$in": ids}}, {"_id": 1})}
            mine = [index for index in outcome.duplicates if docs[index]["_id"] in ours]
            outcome.duplicates = [index for index in outcome.duplicates if index not in mine]
            outcome.applied += len(mine)
        return outcome

    @transient
    def existing_recipients(self, from_users: list[Any], month: str) -> set[tuple[Any, str]]:
        found = self.collection.find(
            {"fromUserId": {"$in": from_users}, "month": month}, {"fromUserId": 1, "toEmail": 1}
        )
        return {(doc.get("fromUserId"), str(doc.get("toEmail", "")).lower()) for doc in found}

    @transient
    def of_recipient(
        self, from_user: Any, to_email: str, month: str | None = None
    ) -> Document | None:
        """The invitation of this sender to this address for `month`, or the
        latest one of any month (the unique key's prefix serves both)."""
        query: Document = {"fromUserId": from_user, "toEmail": to_email.strip().lower()}
        if month is not None:
            query["month"] = month
        return self.collection.find_one(query, sort=[("_id", DESCENDING)])

    @transient
    def senders_invited_before(
        self, from_users: list[Any], month: str, before: datetime
    ) -> set[Any]:
        """The users among `from_users` with an invitation for `month` created
        before `before` (the switch-over: by the Node.js service)."""
        found = self.collection.find(
            {"fromUserId": {"$in": from_users}, "month": month, "createdAt": {"$lt": before}},
            {"fromUserId": 1},
        )
        return {doc.get("fromUserId") for doc in found}

    @transient
    def queued_page(
        self, month: str, after: Any | None, limit: int, from_users: list[Any] | None = None
    ) -> list[Any]:
        query = queued_for(month, from_users)
        if after is not None:
            query["_id"] = {"$gt": after}
        cursor = self.collection.find(query, {"_id": 1}).sort("_id", ASCENDING).limit(limit)
        return [doc["_id"] for doc in cursor]

    @transient
    def count_queued(self, month: str, from_users: list[Any] | None = None) -> int:
        return self.collection.count_documents(queued_for(month, from_users))

    @transient
    def load_queued(self, ids: list[Any]) -> list[Document]:
        cursor = self.collection.find({"_id": {"$in": ids}, "status": QUEUED}, INVITATION_FIELDS)
        return list(cursor)

    @transient
    def mark_sent(self, sent: list[tuple[Document, str]], now: datetime) -> WriteReport:
        """queued -> sent, each (invitation as read, provider); an invitation the
        app already moved on is left alone. One bulk of updates by `_id` (an
        `update_many` over `$in` scans on some servers, and one malformed
        document would fail it whole); a malformed `tracking` is replaced."""
        updates = []
        for invitation, provider in sent:
            tracking, repairs = set_under(
                invitation, "tracking", {"sentAt": now, "emailProvider": provider}
            )
            update = Update(
                {"_id": invitation["_id"], "status": QUEUED},
                {"$set": {"status": "sent", **tracking, "updatedAt": now}},
            )
            updates.append((invitation["_id"], update, repairs))
        return self.update_each(updates)

    @transient
    def queued_backlog(self, created_before: datetime) -> tuple[int, datetime | None]:
        """How many invitations have waited in `queued` since before the cutoff,
        and when the oldest was created."""
        query = {
            "status": QUEUED,
            "$or": [
                {"tracking.createdAt": {"$lt": created_before}},
                {"tracking.createdAt": {"$exists": False}, "createdAt": {"$lt": created_before}},
            ],
        }
        count = self.collection.count_documents(query)
        if count == 0:
            return 0, None
        oldest = (
            self.collection.find_one(
                query, {"createdAt": 1, "tracking.createdAt": 1}, sort=[("createdAt", 1)]
            )
            or {}
        )
        created = oldest.get("createdAt") or (oldest.get("tracking") or {}).get("createdAt")
        return count, created if isinstance(created, datetime) else None

    @transient
    def cancel(self, ids: list[Any], now: datetime) -> int:
        """queued -> cancelled: an invitation that can no longer go out."""
        update = {"$set": {"status": "cancelled", "updatedAt": now}}
        updates = [Update({"_id": doc_id, "status": QUEUED}, update) for doc_id in ids]
        return self.tolerant_bulk_write(updates).applied

    @transient
    def reminder_page(
        self, query: Document, after: tuple[datetime, Any] | None, limit: int
    ) -> list[tuple[datetime, Any]]:
        """(sentAt, _id) of the next candidates, in sentAt order (the seed's
        { tracking.sentAt, status, expiresAt } index serves the range)."""
        page: Document = dict(query)
        if after is not None:
            sent_at, last_id = after
            page["$and"] = [
                *query.get("$and", []),
                {
                    "$or": [
                        {"tracking.sentAt": {"$gt": sent_at}},
                        {"tracking.sentAt": sent_at, "_id": {"$gt": last_id}},
                    ]
                },
            ]
        cursor = (
            self.collection.find(page, {"tracking.sentAt": 1})
            .sort([("tracking.sentAt", ASCENDING), ("_id", ASCENDING)])
            .limit(limit)
        )
        return [(doc["tracking"]["sentAt"], doc["_id"]) for doc in cursor]

    @transient
    def count_matching(self, query: Document) -> int:
        return self.collection.count_documents(query)

    @transient
    def load(self, ids: list[Any]) -> list[Document]:
        return list(self.collection.find({"_id": {"$in": ids}}, INVITATION_FIELDS))

    @transient
    def push_reminders(self, reminders: list[tuple[Document, str]], now: datetime) -> WriteReport:
        """Record reminders, each (invitation as read, type); each filter requires
        that none of that type exists yet, so a reminder can never be recorded
        twice. `reminders` that is not an array is replaced by the new one."""
        updates = []
        for invitation, kind in reminders:
            entry = {"type": kind, "sentAt": now, "opened": False}
            repairs = not isinstance(invitation.get("reminders", []), list)
            change: Document = (
                {"$set": {"reminders": [entry], "updatedAt": now}}
                if repairs
                else {"$push": {"reminders": entry}, "$set": {"updatedAt": now}}
            )
            update = Update({"_id": invitation["_id"], "reminders.type": {"$ne": kind}}, change)
            updates.append((invitation["_id"], update, repairs))
        return self.update_each(updates)

    @transient
    def mark_bounced(
        self, bounces: list[tuple[Document, str]], now: datetime, from_statuses: list[str | None]
    ) -> WriteReport:
        """A permanent refusal, each (invitation as read, reason): `bounced`, but
        only from the statuses the caller was sending for (a queued invitation;
        a reminded sent/opened/started one)."""
        updates = []
        for invitation, reason in bounces:
            tracking, repairs = set_under(invitation, "tracking", {"bounceReason": reason})
            update = Update(
                {"_id": invitation["_id"], "status": {"$in": from_statuses}},
                {"$set": {"status": "bounced", **tracking, "updatedAt": now}},
            )
            updates.append((invitation["_id"], update, repairs))
        return self.update_each(updates)

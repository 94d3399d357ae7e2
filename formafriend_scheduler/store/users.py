"""The app's `users` collection (fields per data-model.md)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from bson import ObjectId
from bson.errors import InvalidId
from pymongo import ASCENDING

from formafriend_scheduler.store.base import BulkOutcome, Document, Repository, Update
from formafriend_scheduler.store.retry import transient

# What the scheduler reads of a user: never the whole document.
SCHEDULE_FIELDS = {"preferences": 1, "metadata": 1}
SENDER_FIELDS = {"username": 1, "email": 1, "profile": 1, "preferences": 1, "metadata": 1}
VALID_SEND_DAYS = list(range(1, 29))


def parse_user_id(text: str) -> ObjectId:
    try:
        return ObjectId(text)
    except (InvalidId, TypeError):
        raise ValueError(f"{text!r} is not a user id (24 hex characters)") from None


def senders_filter(latest_send_day: int | None) -> Document:
    """Active, not opted-out users whose send day can already have come.

    `latest_send_day` None means any day (a past month). A sendDay that is
    missing or invalid falls back to the default day, so those users are
    always candidates; the exact due check is done in Python.
    """
    query: Document = {"metadata.isActive": {"$ne": False}, "preferences.optedOut": {"$ne": True}}
    if latest_send_day is not None:
        query["$or"] = [
            {"preferences.sendDay": {"$lte": latest_send_day}},
            {"preferences.sendDay": {"$nin": VALID_SEND_DAYS}},
        ]
    return query


class UserRepository(Repository):
    collection_name = "users"

    @transient
    def candidates_page(
        self, query: Document, after: Any | None, limit: int, only: Any | None = None
    ) -> list[Document]:
        """One page of candidate senders in _id order (keyset paging, so a long
        run never keeps a cursor open while workers are busy)."""
        page: Document = dict(query)
        if only is not None:
            page["_id"] = only
        elif after is not None:
            page["_id"] = {"$gt": after}
        cursor = self.collection.find(page, SCHEDULE_FIELDS).sort("_id", ASCENDING).limit(limit)
        return list(cursor)

    @transient
    def count(self, query: Document) -> int:
        return self.collection.count_documents(query)

    @transient
    def load(self, ids: Iterable[Any]) -> list[Document]:
        return list(self.collection.find({"_id": {"$in": list(ids)}}, SENDER_FIELDS))

    @transient
    def record_cycles(self, updates: list[tuple[Any, Document]]) -> BulkOutcome:
        """Apply each (user id, update) for a newly completed cycle."""
        return self.tolerant_bulk_write(
            [
                Update(
                    {
                        "_id": uid,
                    },
                    update,
                )
                for uid, update in updates
            ]
        )

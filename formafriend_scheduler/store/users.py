"""The app's `users` collection (fields per data-model.md)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from bson import ObjectId
from bson.errors import InvalidId
from pymongo import ASCENDING

from formafriend_scheduler.store.base import Document, Repository, WriteReport, counter_value
from formafriend_scheduler.store.retry import transient

# What the scheduler reads of a user: never the whole document.
SCHEDULE_FIELDS = {"preferences": 1, "metadata": 1}
SENDER_FIELDS = {
    "username": 1,
    "email": 1,
    "profile": 1,
    "preferences": 1,
    "metadata": 1,
    "statistics": 1,
}
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
        run never keeps a cursor open while workers are busy).

        Walked along `_id`, the query checked on the way: left to itself a
        planner may serve each page from an index on the query's fields, read
        every candidate and sort them, for every page (DocumentDB, 50,000
        users in pages of 500: 11.3 s; along `_id`: 1.0 s, 0.76 s in pages of
        1,000). Every MongoDB-wire server here takes the hint."""
        page: Document = dict(query)
        if only is not None:
            page["_id"] = only
        elif after is not None:
            page["_id"] = {"$gt": after}
        cursor = (
            self.collection.find(page, SCHEDULE_FIELDS)
            .sort("_id", ASCENDING)
            .hint([("_id", ASCENDING)])
            .limit(limit)
            .batch_size(limit)
        )
        return list(cursor)

    @transient
    def count(self, query: Document) -> int:
        return self.collection.count_documents(query)

    @transient
    def load(self, ids: Iterable[Any]) -> list[Document]:
        return list(self.collection.find({"_id": {"$in": list(ids)}}, SENDER_FIELDS))

    @transient
    def record_cycles(self, cycles: list[tuple[Document, Document]]) -> WriteReport:
        """Apply each (user as read, update) for a newly completed cycle. A
        `$inc` of `statistics.joinedCycles` is written as the new count,
        guarded by the count it was computed from (see compare_and_set), and
        malformed `statistics` or `metadata` are replaced."""
        updates = {user["_id"]: update for user, update in cycles}
        return self.compare_and_set(
            [user for user, _ in cycles],
            lambda user: cycle_plan(user, updates[user["_id"]]),
            lambda before, current: (
                not _increments(updates[before["_id"]])
                or _joined(current) == (_joined(before) or 0) + 1
            ),
            CYCLE_FIELDS,
        )


CYCLE_FIELDS = {"statistics": 1, "metadata": 1}


def _increments(update: Document) -> bool:
    return "statistics.joinedCycles" in update.get("$inc", {})


def _joined(user: Document) -> int | None:
    statistics = user.get("statistics")
    return counter_value(statistics.get("joinedCycles")) if isinstance(statistics, dict) else None


def cycle_plan(user: Document, update: Document) -> tuple[Document, Document, bool]:
    """(guard, update, repairs) for a cycle update of `user` as read."""
    guard: Document = {}
    change: Document = {"$set": dict(update.get("$set", {}))}
    repairs = False
    if _increments(update):
        statistics = user.get("statistics")
        raw = statistics.get("joinedCycles") if isinstance(statistics, dict) else None
        if "statistics" in user and not isinstance(statistics, dict):
            guard["statistics"] = statistics
            change["$set"]["statistics"] = {"joinedCycles": 1}
            repairs = True
        else:
            guard["statistics.joinedCycles"] = raw
            change["$set"]["statistics.joinedCycles"] = (counter_value(raw) or 0) + 1
            repairs = raw is not None and counter_value(raw) is None
    for field_path, value in update.get("$max", {}).items():
        parent, name = field_path.split(".", 1)
        if isinstance(user.get(parent), dict) or parent not in user:
            change.setdefault("$max", {})[field_path] = value
        else:
            guard[parent] = user[parent]
            change["$set"][parent] = {name: value}
            repairs = True
    return guard, change, repairs

"""What every repository shares: a lazily resolved collection and the retry policy."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Protocol

from pymongo.collection import Collection
from pymongo.database import Database

from formafriend_scheduler.store.retry import RetryPolicy

Document = dict[str, Any]
Filter = Mapping[str, Any]


class DatabaseHandle(Protocol):
    retry_policy: RetryPolicy

    @property
    def db(self) -> Database[Document]: ...


class Repository:
    collection_name: ClassVar[str]

    def __init__(self, handle: DatabaseHandle) -> None:
        self._handle = handle

    @property
    def retry_policy(self) -> RetryPolicy:
        return self._handle.retry_policy

    @property
    def collection(self) -> Collection[Document]:
        return self._handle.db[self.collection_name]

    def batched_update(self, query: Filter, update: Mapping[str, Any], limit: int) -> int:
        """Update at most `limit` documents matching `query`; returns how many changed.

        Reads the ids first and re-applies the query in the update, so each call
        touches a bounded batch and a document changed meanwhile is left alone.
        """
        ids = [doc["_id"] for doc in self.collection.find(query, {"_id": 1}).limit(limit)]
        if not ids:
            return 0
        result = self.collection.update_many({"_id": {"$in": ids}, **query}, update)
        return result.modified_count

    def batched_delete(self, query: Filter, limit: int) -> int:
        ids = [doc["_id"] for doc in self.collection.find(query, {"_id": 1}).limit(limit)]
        if not ids:
            return 0
        return self.collection.delete_many({"_id": {"$in": ids}, **query}).deleted_count

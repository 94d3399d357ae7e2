"""What every repository shares: a lazily resolved collection and the retry policy."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from pymongo import InsertOne, UpdateOne
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import BulkWriteError, DuplicateKeyError, WriteError

from formafriend_scheduler.redact import one_line
from formafriend_scheduler.store.retry import RetryPolicy

Document = dict[str, Any]
Filter = Mapping[str, Any]
DUPLICATE_KEY = 11000


@dataclass
class BulkOutcome:
    """What a tolerant bulk write did: malformed documents are reported, not fatal."""

    applied: int = 0
    duplicates: list[int] = field(default_factory=list)  # indexes of ops refused as duplicates
    errors: dict[int, str] = field(default_factory=dict)  # index -> why, for other refusals


def bulk_errors(error: BulkWriteError) -> tuple[list[int], dict[int, str]]:
    duplicates: list[int] = []
    others: dict[int, str] = {}
    for write_error in error.details.get("writeErrors", []):
        index = int(write_error.get("index", -1))
        if write_error.get("code") == DUPLICATE_KEY:
            duplicates.append(index)
        else:
            others[index] = one_line(str(write_error.get("errmsg")), 200)
    return duplicates, others


@dataclass(frozen=True)
class Insert:
    document: Document


@dataclass(frozen=True)
class Update:
    filter: Document
    update: Document


WriteOp = Insert | Update


class DatabaseHandle(Protocol):
    retry_policy: RetryPolicy

    @property
    def in_process(self) -> bool: ...

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

    def tolerant_bulk_write(self, operations: Sequence[WriteOp]) -> BulkOutcome:
        """An unordered bulk write in which one bad document cannot stop the rest."""
        if not operations:
            return BulkOutcome()
        if self._handle.in_process:
            # mongomock cannot take the bulk operations of current pymongo.
            return self._one_by_one(operations)
        requests = [
            InsertOne(op.document) if isinstance(op, Insert) else UpdateOne(op.filter, op.update)
            for op in operations
        ]
        try:
            result = self.collection.bulk_write(requests, ordered=False)
        except BulkWriteError as error:
            duplicates, errors = bulk_errors(error)
            applied = error.details.get("nModified", 0) + error.details.get("nInserted", 0)
            return BulkOutcome(applied, duplicates, errors)
        return BulkOutcome(result.modified_count + result.inserted_count)

    def _one_by_one(self, operations: Sequence[WriteOp]) -> BulkOutcome:
        outcome = BulkOutcome()
        for index, op in enumerate(operations):
            try:
                if isinstance(op, Insert):
                    self.collection.insert_one(op.document)
                    outcome.applied += 1
                else:
                    outcome.applied += self.collection.update_one(
                        op.filter, op.update
                    ).modified_count
            except DuplicateKeyError:
                outcome.duplicates.append(index)
            except WriteError as error:
                outcome.errors[index] = one_line(str(error), 200)
        return outcome

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

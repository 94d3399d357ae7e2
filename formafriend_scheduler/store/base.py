"""What every repository shares: a lazily resolved collection and the retry policy."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Protocol

from pymongo import DeleteOne, InsertOne, UpdateOne
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import (
    BulkWriteError,
    DocumentTooLarge,
    DuplicateKeyError,
    WriteConcernError,
    WriteError,
)

from formafriend_scheduler.clock import to_utc
from formafriend_scheduler.errors import StoreError
from formafriend_scheduler.redact import one_line
from formafriend_scheduler.store.retry import RetryPolicy

Document = dict[str, Any]
Filter = Mapping[str, Any]
DUPLICATE_KEY = 11000


@dataclass
class BulkOutcome:
    """What a tolerant bulk write did: malformed documents are reported, not fatal."""

    applied: int = 0  # documents inserted or modified
    matched: int = 0  # updates whose filter matched a document
    duplicates: list[int] = field(default_factory=list)  # indexes of ops refused as duplicates
    errors: dict[int, str] = field(default_factory=dict)  # index -> why, for other refusals


def bulk_errors(write_errors: list[Document]) -> tuple[list[int], dict[int, str]]:
    """A bulk's write errors: (indexes refused as duplicates, index -> why for the others)."""
    duplicates: list[int] = []
    others: dict[int, str] = {}
    for write_error in write_errors:
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
# Operations per bulk write. PyMongo splits a bulk at the server's advertised
# maxWriteBatchSize (100,000 on MongoDB), but DocumentDB refuses more than
# 25,000 while advertising more; 10,000 per round trip costs nothing anywhere.
MAX_BULK_OPERATIONS = 10_000
# Updates per bulk write on FerretDB v1, which stops answering (and then
# answers no one) when one `update` command carries 100 operations or more
# (measured here: 99 take 0.30 s, 100 never return; inserts and deletes are
# not affected). Only there (Store.updates_per_bulk asks the server once): on
# MongoDB and FerretDB v2 the app's writes per 100 messages are one round trip
# each, not two (0.02 round trips per invitation).
FERRETDB_V1_UPDATES_PER_BULK = 50
# Operations sent as one plain write command (see Repository._write_command):
# a command must fit in one BSON document (16 MB); bigger bulks go through
# PyMongo's bulk_write, which splits by size.
MAX_OPERATIONS_PER_COMMAND = 1_000


@dataclass
class WriteReport:
    """Per document, what a bulk of updates by `_id` did: one that could not
    be written is named with the reason, never fatal to the others."""

    applied: int = 0
    matched: int = 0
    repaired: list[Any] = field(default_factory=list)  # ids whose malformed part was replaced
    failed: dict[Any, str] = field(default_factory=dict)  # id -> why it was not written

    def add(self, other: WriteReport) -> None:
        self.applied += other.applied
        self.matched += other.matched
        self.repaired += other.repaired
        self.failed.update(other.failed)


def bson_time(moment: datetime) -> datetime:
    """`moment` as it reads back from MongoDB: BSON dates keep milliseconds."""
    return to_utc(moment).replace(microsecond=moment.microsecond // 1000 * 1000)


def counter_value(value: Any) -> int | None:
    """A counter as the app stores it (an int, or a whole double from
    JavaScript); None when it is anything else (malformed)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value) if value == int(value) and value >= 0 else None


def set_under(doc: Document, parent: str, values: Document) -> tuple[Document, bool]:
    """The `$set` of `values` under the sub-document `parent` of `doc` (as read).

    When `doc[parent]` is a document or missing: dotted paths, which keep its
    other fields. When it is anything else (null, a string, an array: a
    malformed document, on which a dotted `$set` fails with code 28), the
    sub-document is replaced by `values`: repaired. Returns (fields, repaired).
    """
    current = doc.get(parent)
    if isinstance(current, dict) or parent not in doc:
        return {f"{parent}.{name}": value for name, value in values.items()}, False
    return {parent: dict(values)}, True


class DatabaseHandle(Protocol):
    retry_policy: RetryPolicy

    @property
    def in_process(self) -> bool: ...

    @property
    def db(self) -> Database[Document]: ...

    @property
    def updates_per_bulk(self) -> int: ...


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
        """Unordered bulk writes (of at most MAX_BULK_OPERATIONS each, or
        the server's `updates_per_bulk` with updates) in which one bad document cannot
        stop the rest."""
        outcome = BulkOutcome()
        inserts_only = all(isinstance(op, Insert) for op in operations)
        step = MAX_BULK_OPERATIONS if inserts_only else self._handle.updates_per_bulk
        for start in range(0, len(operations), step):
            part = self._bulk_write(operations[start : start + step])
            outcome.applied += part.applied
            outcome.matched += part.matched
            outcome.duplicates += [start + index for index in part.duplicates]
            outcome.errors.update({start + index: why for index, why in part.errors.items()})
        return outcome

    def _bulk_write(self, operations: Sequence[WriteOp]) -> BulkOutcome:
        if not operations:
            return BulkOutcome()
        if self._handle.in_process:
            # mongomock cannot take the bulk operations of current pymongo.
            return self._one_by_one(operations)
        one_kind = len({type(op) for op in operations}) == 1
        if one_kind and len(operations) <= MAX_OPERATIONS_PER_COMMAND:
            try:
                return self._write_command(operations)
            except DocumentTooLarge:
                pass  # PyMongo's bulk splits by size
        requests = [
            InsertOne(op.document) if isinstance(op, Insert) else UpdateOne(op.filter, op.update)
            for op in operations
        ]
        try:
            result = self.collection.bulk_write(requests, ordered=False)
        except BulkWriteError as error:
            duplicates, errors = bulk_errors(error.details.get("writeErrors", []))
            if -1 in errors:  # a write error without its index: which one failed is unknown
                return self._again_one_by_one(operations)
            details = error.details
            applied = details.get("nModified", 0) + details.get("nInserted", 0)
            return BulkOutcome(applied, details.get("nMatched", 0), duplicates, errors)
        except KeyError:
            # FerretDB v1 answers an update with write errors without `n`,
            # `nModified` or the errors' indexes, which PyMongo cannot read.
            return self._again_one_by_one(operations)
        return BulkOutcome(result.modified_count + result.inserted_count, result.matched_count)

    def _write_command(self, operations: Sequence[WriteOp]) -> BulkOutcome:
        """One `insert` or `update` command built from plain documents.

        PyMongo's bulk_write spends more CPU than the server exchange itself
        on small bulks (an operation object, its validation and bulk
        bookkeeping per document: 8 to 13 µs per operation against 5 to 7 µs
        for the command, measured on 50-document bulks), and the scheduler's
        bulks are all small and of one kind. Not retried by PyMongo (its
        retryable writes): the repositories' retry policy repeats the whole
        call, and every update is guarded (see update_each).
        """
        # One kind of operation (_bulk_write sends mixed bulks elsewhere).
        inserts = [op.document for op in operations if isinstance(op, Insert)]
        updates = [{"q": op.filter, "u": op.update} for op in operations if isinstance(op, Update)]
        command: Document = (
            {"insert": self.collection_name, "documents": inserts, "ordered": False}
            if inserts
            else {"update": self.collection_name, "updates": updates, "ordered": False}
        )
        reply = self._handle.db.command(command)
        if "writeConcernError" in reply:
            concern = reply["writeConcernError"]
            raise WriteConcernError(str(concern.get("errmsg")), concern.get("code"), reply)
        errors = reply.get("writeErrors", [])
        if "n" not in reply or any("index" not in error for error in errors):
            # FerretDB v1 answers an update with write errors without `n`,
            # `nModified` or the errors' indexes: which one failed is unknown.
            return self._again_one_by_one(operations)
        duplicates, others = bulk_errors(errors)
        if "insert" in command:
            return BulkOutcome(int(reply["n"]), 0, duplicates, others)
        return BulkOutcome(int(reply.get("nModified", 0)), int(reply["n"]), duplicates, others)

    def _again_one_by_one(self, operations: Sequence[WriteOp]) -> BulkOutcome:
        """After a bulk whose reply could not be read per operation. Updates are
        guarded (see update_each), so those the bulk applied no longer match."""
        if any(isinstance(op, Insert) for op in operations):
            raise StoreError("a bulk insert failed and the server did not say which document")
        return self._one_by_one(operations)

    def _one_by_one(self, operations: Sequence[WriteOp]) -> BulkOutcome:
        outcome = BulkOutcome()
        for index, op in enumerate(operations):
            try:
                if isinstance(op, Insert):
                    self.collection.insert_one(op.document)
                    outcome.applied += 1
                else:
                    result = self.collection.update_one(op.filter, op.update)
                    outcome.applied += result.modified_count
                    outcome.matched += result.matched_count
            except DuplicateKeyError:
                outcome.duplicates.append(index)
            except WriteError as error:
                outcome.errors[index] = one_line(str(error), 200)
            except (ValueError, TypeError) as error:  # how mongomock refuses an update
                outcome.errors[index] = one_line(f"{type(error).__name__}: {error}", 200)
        return outcome

    def update_each(self, updates: Sequence[tuple[Any, Update, bool]]) -> WriteReport:
        """Bulk updates, each (document id, update, whether it repairs the
        document); the report names each document not written and why.

        Every update must be guarded: its filter no longer matches once it has
        been applied (a status it moves from, a value it replaces), so applying
        it twice changes nothing, and a bulk whose reply cannot be read per
        operation can safely be followed by the same updates one by one.
        """
        outcome = self.tolerant_bulk_write([update for _, update, _ in updates])
        report = WriteReport(applied=outcome.applied, matched=outcome.matched)
        for index, (doc_id, _, repairs) in enumerate(updates):
            if index in outcome.errors:
                report.failed[doc_id] = outcome.errors[index]
            elif repairs:
                report.repaired.append(doc_id)
        return report

    def compare_and_set(
        self,
        docs: Sequence[Document],
        plan: Callable[[Document], tuple[Document, Document, bool]],
        applied: Callable[[Document, Document], bool],
        projection: Document,
        attempts: int = 3,
    ) -> WriteReport:
        """Updates computed from each document as read, each applied only while
        the fields it was computed from are unchanged, so a concurrent change
        (the app recording an answer) is neither lost nor contradicted.

        `plan(doc)` gives (guard, update, repairs), the guard holding the values
        the update was computed from. When fewer updates matched than were sent
        (the bulk reports counts, not which), the documents are read again:
        those where `applied(as read before, as read now)` hold the update;
        the others are recomputed from what they hold now, up to `attempts`
        times.
        """
        report = WriteReport()
        pending = list(docs)
        for _ in range(attempts):
            updates = []
            for doc in pending:
                guard, update, repairs = plan(doc)
                updates.append((doc["_id"], Update({"_id": doc["_id"], **guard}, update), repairs))
            part = self.update_each(updates)
            report.add(part)
            if part.matched + len(part.failed) >= len(updates):
                return report
            before = {doc["_id"]: doc for doc in pending if doc["_id"] not in part.failed}
            current = self.collection.find({"_id": {"$in": list(before)}}, projection)
            pending = [doc for doc in current if not applied(before[doc["_id"]], doc)]
            if not pending:
                return report
        for doc in pending:
            report.failed[doc["_id"]] = f"changed by another writer {attempts} times in a row"
        return report

    def batched_update(self, query: Filter, update: Mapping[str, Any], limit: int) -> int:
        """Update at most `limit` documents matching `query`; returns how many changed.

        Reads the ids first and re-applies the query in each update, so each
        call touches a bounded batch and a document changed meanwhile is left
        alone. The writes go by `_id` in one bulk: an `update_many` over `$in`
        with the query beside it may be planned on the query's index instead
        and read every match (DocumentDB: 14 ms for 20 ids among 20,000, where
        the bulk by `_id` takes 5 ms).
        """
        ids = [doc["_id"] for doc in self.collection.find(query, {"_id": 1}).limit(limit)]
        updates = [Update({**query, "_id": doc_id}, dict(update)) for doc_id in ids]
        return self.tolerant_bulk_write(updates).applied

    def batched_delete(self, query: Filter, limit: int) -> int:
        """Delete at most `limit` documents matching `query`, by `_id` in bulk
        (as `batched_update`)."""
        ids = [doc["_id"] for doc in self.collection.find(query, {"_id": 1}).limit(limit)]
        if not ids:
            return 0
        if self._handle.in_process:  # mongomock cannot take current pymongo's bulks
            return self.collection.delete_many({**query, "_id": {"$in": ids}}).deleted_count
        deleted = 0
        for start in range(0, len(ids), MAX_BULK_OPERATIONS):
            part = ids[start : start + MAX_BULK_OPERATIONS]
            requests = [DeleteOne({**query, "_id": doc_id}) for doc_id in part]
            deleted += self.collection.bulk_write(requests, ordered=False).deleted_count
        return deleted

"""Bulk writes by `_id`: one bad document never stops the others, a malformed
part is repaired, and derived counts are written only from unchanged values."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from bson import ObjectId

from formafriend_scheduler.clock import FrozenClock
from formafriend_scheduler.store import Store, base
from formafriend_scheduler.store.base import Update
from formafriend_scheduler.store.contacts import CONTACT_FIELDS, response_rate
from formafriend_scheduler.store.indexes import INVITATION_KEYS
from tests import factories


def insert(store: Store, collection: str, *docs: dict[str, Any]) -> list[Any]:
    store.db[collection].insert_many([{"_id": ObjectId(), **doc} for doc in docs])
    return [doc["_id"] for doc in store.db[collection].find({}, {"_id": 1}).sort("_id", 1)]


def guarded_increment(doc_id: Any) -> tuple[Any, Update, bool]:
    """n + 1 once: the `done` guard makes a second application change nothing."""
    update = {"$inc": {"n": 1}, "$set": {"done": True}}
    return doc_id, Update({"_id": doc_id, "done": {"$ne": True}}, update), False


def counted_bulks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The size of each bulk write from now on, in order."""
    bulks: list[int] = []
    real_bulk = base.Repository._bulk_write

    def counting(self: Any, operations: Any) -> Any:
        bulks.append(len(operations))
        return real_bulk(self, operations)

    monkeypatch.setattr(base.Repository, "_bulk_write", counting)
    return bulks


def test_a_document_that_refuses_its_update_is_named_and_the_others_are_written(
    store: Store,
) -> None:
    good, bad, other = insert(store, "contacts", {"n": 1}, {"n": "one"}, {"n": 2})

    report = store.contacts.update_each([guarded_increment(i) for i in (good, bad, other)])

    assert list(report.failed) == [bad]
    values = {doc["_id"]: doc["n"] for doc in store.db["contacts"].find()}
    assert values == {good: 2, bad: "one", other: 3}  # each applied exactly once


def test_bulks_are_split_below_the_servers_batch_limit(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Store, "updates_per_bulk", property(lambda self: 2))
    bulks = counted_bulks(monkeypatch)
    ids = insert(store, "contacts", *({"n": i} for i in range(5)))

    assert store.contacts.update_each([guarded_increment(i) for i in ids]).applied == 5
    assert bulks == [2, 2, 1]


def test_a_hundred_updates_and_more_go_through_in_bulks_of_fifty_on_ferretdb_v1_only(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    # FerretDB v1 never answers one `update` command of 100 operations or
    # more; other servers get them in one command.
    bulks = counted_bulks(monkeypatch)
    ids = insert(store, "contacts", *({"n": i} for i in range(120)))

    report = store.contacts.update_each([guarded_increment(i) for i in ids])

    assert report.applied == 120
    assert store.db["contacts"].count_documents({"done": True}) == 120
    ferretdb_v1 = not store.in_process and "ferretdbVersion" in store.db.command("buildInfo")
    assert bulks == ([50, 50, 20] if ferretdb_v1 else [120])


@pytest.mark.parametrize(
    ("responses", "sent", "rate"),
    [(0, 0, 0), (1, 1, 100), (1, 2, 50), (1, 3, 33), (2, 3, 67), (1, 8, 13), (5, 200, 3)],
)
def test_the_response_rate_is_the_apps_math_round(responses: int, sent: int, rate: int) -> None:
    # Math.round(1 / 8 * 100) = Math.round(12.5) = 13: a half goes up.
    assert response_rate(responses, sent) == rate


def with_tracking(sent: int, responses: int, rate: int) -> dict[str, Any]:
    counts = {"invitationsSent": sent, "responsesReceived": responses, "responseRate": rate}
    return {"email": "a@x.org", "tracking": counts}


def contact_as_read(store: Store, contact_id: Any) -> dict[str, Any]:
    found = store.db["contacts"].find_one({"_id": contact_id}, CONTACT_FIELDS)
    assert found is not None
    return found


def test_a_send_recomputes_the_response_rate_as_the_app_would(
    store: Store, clock: FrozenClock
) -> None:
    (contact_id,) = insert(store, "contacts", with_tracking(sent=1, responses=1, rate=100))

    store.contacts.record_sent([contact_as_read(store, contact_id)], clock.now())

    tracking = contact_as_read(store, contact_id)["tracking"]
    assert (tracking["invitationsSent"], tracking["responsesReceived"]) == (2, 1)
    assert tracking["responseRate"] == 50
    assert tracking["lastSentAt"] == clock.now()


def test_an_answer_recorded_by_the_app_during_the_run_is_kept_and_counted(
    store: Store, clock: FrozenClock
) -> None:
    (contact_id,) = insert(store, "contacts", with_tracking(sent=2, responses=1, rate=50))
    as_read = contact_as_read(store, contact_id)  # the worker read it at the start of its batch
    # Meanwhile the app records an answer (Contact.updateTracking): 2 of 2.
    store.db["contacts"].update_one(
        {"_id": contact_id},
        {"$set": {"tracking.responsesReceived": 2, "tracking.responseRate": 100}},
    )

    report = store.contacts.record_sent([as_read], clock.now() + timedelta(seconds=1))

    tracking = contact_as_read(store, contact_id)["tracking"]
    assert (tracking["invitationsSent"], tracking["responsesReceived"]) == (3, 2)
    assert tracking["responseRate"] == 67  # from what the contact holds now, not what was read
    assert report.failed == {}


def test_a_malformed_tracking_or_counter_is_replaced(store: Store, clock: FrozenClock) -> None:
    ids = insert(
        store,
        "contacts",
        {"email": "a@x.org", "tracking": None},
        {"email": "b@x.org", "tracking": "str"},
        {"email": "c@x.org", "tracking": {"invitationsSent": "three", "responsesReceived": 1}},
        {"email": "d@x.org"},
    )

    report = store.contacts.record_sent([contact_as_read(store, i) for i in ids], clock.now())

    assert sorted(report.repaired) == sorted(ids[:3]) and report.failed == {}
    counts = [
        (t["invitationsSent"], t.get("responsesReceived", 0), t["responseRate"])
        for t in (contact_as_read(store, i)["tracking"] for i in ids)
    ]
    assert counts == [(1, 0, 0), (1, 0, 0), (1, 1, 100), (1, 0, 0)]


def test_an_insert_retried_after_a_lost_reply_counts_its_own_documents_as_created(
    store: Store, clock: FrozenClock
) -> None:
    """Given the first attempt of a bulk insert wrote 3 of 5 invitations before
    its reply was lost, the retry finds them there: created, not duplicates.
    Another run's invitation for the same recipient stays a duplicate."""
    owner = ObjectId()
    docs = [
        factories.invitation(owner, f"c{i}@x.org", "2027-01", expires_at=clock.now())
        for i in range(5)
    ]
    store.indexes.ensure(INVITATION_KEYS)
    store.db["invitations"].insert_many([dict(doc) for doc in docs[:3]])  # the lost attempt
    other_run = factories.invitation(owner, "c4@x.org", "2027-01", expires_at=clock.now())
    store.db["invitations"].insert_one(other_run)

    outcome = store.invitations.insert_new(docs)

    assert outcome.applied == 4  # three by the lost attempt, one now
    assert [docs[i]["toEmail"] for i in outcome.duplicates] == ["c4@x.org"]


@pytest.mark.real_server_only  # mongomock writes one document at a time
def test_a_bulk_too_big_for_one_command_is_split_by_size_and_loses_nothing(
    store: Store,
) -> None:
    # Three documents of 6 MB: one write command would exceed BSON's 16 MB.
    docs = [{"_id": ObjectId(), "blob": "x" * 6_000_000} for _ in range(3)]
    duplicate = {"_id": docs[0]["_id"], "blob": "again"}

    outcome = store.contacts.tolerant_bulk_write([base.Insert(doc) for doc in [*docs, duplicate]])

    assert (outcome.applied, outcome.duplicates) == (3, [3])
    assert store.db["contacts"].count_documents({}) == 3


def test_a_refused_insert_is_named_by_its_place_in_the_bulk(store: Store) -> None:
    taken = ObjectId()
    store.db["contacts"].insert_one({"_id": taken})
    ops = [base.Insert({"_id": ObjectId()}), base.Insert({"_id": taken}), base.Insert({"_id": 3})]

    outcome = store.contacts.tolerant_bulk_write(ops)

    assert (outcome.applied, outcome.duplicates, outcome.errors) == (2, [1], {})

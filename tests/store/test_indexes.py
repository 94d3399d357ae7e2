"""init-db's index management: idempotent, name-agnostic."""

from __future__ import annotations

import pytest
from pymongo.errors import OperationFailure

from formafriend_scheduler.store import Store
from formafriend_scheduler.store.indexes import ALL_INDEXES, APP_INDEXES
from tests.appdata import APP_OWN_INDEXES


def test_ensure_creates_every_index_once(store: Store) -> None:
    first = store.indexes.ensure()
    second = store.indexes.ensure()
    assert all(state.created for state in first)
    assert not any(state.created for state in second)
    assert all(state.present for state in store.indexes.check())
    assert len(first) == len(ALL_INDEXES)


def test_an_index_the_app_made_under_another_name_counts_as_present(store: Store) -> None:
    store.db["contacts"].create_index(
        [("ownerId", 1), ("email", 1)], unique=True, name="owner_email"
    )
    states = {s.spec.describe(): s for s in store.indexes.ensure(APP_INDEXES)}
    assert not states["contacts { ownerId: 1, email: 1 } unique"].created


def test_unique_keys_are_created_unique(store: Store) -> None:
    store.indexes.ensure()
    info = store.db["invitations"].index_information()
    unique_keys = {tuple(k for k, _ in spec["key"]) for spec in info.values() if spec.get("unique")}
    assert ("fromUserId", "toEmail", "month") in unique_keys
    assert ("token",) in unique_keys


def test_check_reports_what_is_missing(store: Store) -> None:
    missing = [state for state in store.indexes.check() if not state.present]
    assert len(missing) == len(ALL_INDEXES)


def test_special_indexes_of_the_app_do_not_break_inspection(store: Store) -> None:
    # Given the app keeps a text index (its key direction is "text", not a number),
    try:
        store.db["users"].create_index([("username", "text")])
    except OperationFailure:
        pytest.skip("this server has no text indexes (FerretDB v1)")
    # init-db and health-check still read the index list.
    assert all(state.present for state in store.indexes.ensure())


def test_the_indexes_added_to_the_apps_collections_are_exactly_those_its_schemas_lack() -> None:
    # APP_OWN_INDEXES: the app's schemas' indexes (data-model.md). What the
    # scheduler adds beyond them is what the app's syncIndexes() would drop.
    declared = {(spec.collection, spec.keys) for spec in APP_OWN_INDEXES}
    added = {
        spec.describe() for spec in APP_INDEXES if (spec.collection, spec.keys) not in declared
    }
    assert added == {spec.describe() for spec in APP_INDEXES if spec.added_to_app}
    assert added == {
        "users { metadata.isActive: 1, preferences.sendDay: 1 }",
        "contacts { ownerId: 1, isActive: 1, optedOut: 1 }",
        "invitations { reminders.type: 1 }",
        "invitations { month: 1, status: 1, _id: 1 }",
    }

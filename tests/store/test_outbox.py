"""The outbox claim: new, failed, dead and live claims."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from formafriend_scheduler.clock import FrozenClock
from formafriend_scheduler.store import Store
from formafriend_scheduler.store.outbox import Settle

STALE = timedelta(minutes=5)


def claim(store: Store, clock: FrozenClock, claimant: str, run_id: str, *keys: str) -> object:
    now = clock.now()
    return store.outbox.claim(
        [(key, key.split(":")[0], "invitation") for key in keys],
        claimant,
        run_id,
        now,
        stale_before=now - STALE,
    )


def test_new_messages_are_claimed_once(store: Store, clock: FrozenClock) -> None:
    first = claim(store, clock, "run-a/1", "run-a", "i1:invitation", "i2:invitation")
    again = claim(store, clock, "run-b/2", "run-b", "i1:invitation")
    assert first.claimed == {"i1:invitation", "i2:invitation"}  # type: ignore[attr-defined]
    # Given run-a is still sending i1 (claimed a moment ago), run-b must not.
    assert again.claimed == set() and again.busy == {"i1:invitation"}  # type: ignore[attr-defined]


def test_a_claim_of_a_dead_run_is_taken_over_after_the_batch_timeout(
    store: Store, clock: FrozenClock
) -> None:
    claim(store, clock, "run-a/1", "run-a", "i1:invitation")
    clock.advance(STALE + timedelta(seconds=1))
    taken = claim(store, clock, "run-b/2", "run-b", "i1:invitation")
    assert taken.claimed == {"i1:invitation"}  # type: ignore[attr-defined]
    doc = store.db["scheduler_outbox"].find_one({"_id": "i1:invitation"})
    assert doc is not None and (doc["claimant"], doc["attempts"]) == ("run-b/2", 2)


def test_a_takeover_won_but_never_written_is_itself_taken_over_once_stale(
    store: Store, clock: FrozenClock
) -> None:
    """run-b won attempt 2 in the claim ledger and died before writing the entry."""
    claim(store, clock, "run-a/1", "run-a", "i1:invitation")
    clock.advance(STALE + timedelta(seconds=1))
    store.claims.take({"i1:invitation": 2}, "run-b/1", clock.now(), runId="run-b")

    busy = claim(store, clock, "run-c/1", "run-c", "i1:invitation")
    assert busy.busy == {"i1:invitation"}  # type: ignore[attr-defined]
    clock.advance(STALE + timedelta(seconds=1))
    taken = claim(store, clock, "run-c/1", "run-c", "i1:invitation")
    assert taken.claimed == {"i1:invitation"}  # type: ignore[attr-defined]
    doc = store.db["scheduler_outbox"].find_one({"_id": "i1:invitation"})
    assert doc is not None and (doc["claimant"], doc["attempts"]) == ("run-c/1", 3)


def test_a_killed_worker_of_the_same_run_is_taken_over_at_once(
    store: Store, clock: FrozenClock
) -> None:
    claim(store, clock, "run-a/1", "run-a", "i1:invitation")
    retry = claim(store, clock, "run-a/2", "run-a", "i1:invitation")
    assert retry.claimed == {"i1:invitation"}  # type: ignore[attr-defined]


def run_a_fails_i1_and_sends_i2(store: Store, clock: FrozenClock) -> None:
    claim(store, clock, "run-a/1", "run-a", "i1:invitation", "i2:invitation")
    store.outbox.settle(
        [
            Settle("i1:invitation", "failed", "451 later", clock.now()),
            Settle("i2:invitation", "sent", "", clock.now()),
        ],
        "run-a/1",
    )


def test_failed_messages_are_retried_and_delivered_ones_never(
    store: Store, clock: FrozenClock
) -> None:
    run_a_fails_i1_and_sends_i2(store, clock)
    later = claim(store, clock, "run-b/2", "run-b", "i1:invitation", "i2:invitation")
    assert later.claimed == {"i1:invitation"}  # type: ignore[attr-defined]
    assert set(later.settled) == {"i2:invitation"}  # type: ignore[attr-defined]


@pytest.mark.real_server_only  # a race between connections; mongomock has one
def test_claimants_racing_for_the_same_messages_get_each_one_once(
    store: Store, clock: FrozenClock
) -> None:
    """No lease between them (two hosts, a takeover in progress): the unique
    `_id` and the conditional takeover still hand each message to one claimant."""
    keys = [f"i{i}:invitation" for i in range(60)]
    claim(store, clock, "dead-run/1", "dead-run", *keys[30:])  # half of them stale
    clock.advance(STALE + timedelta(seconds=1))
    start = threading.Barrier(4)
    claims: dict[str, set[str]] = {}

    def race(name: str) -> None:
        start.wait()
        claims[name] = claim(store, clock, f"{name}/1", name, *keys).claimed  # type: ignore[attr-defined]

    threads = [threading.Thread(target=race, args=(f"run-{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(key for claimed in claims.values() for key in claimed) == sorted(keys)


def test_a_run_tries_each_message_once_and_leaves_its_outcomes_to_the_next_run(
    store: Store, clock: FrozenClock
) -> None:
    # Given run-a settled i1 failed and i2 sent (its app data not written yet),
    run_a_fails_i1_and_sends_i2(store, clock)
    # when run-a's own sending pass meets them again, it leaves both alone
    again = claim(store, clock, "run-a/2", "run-a", "i1:invitation", "i2:invitation")
    assert again.deferred == {"i1:invitation", "i2:invitation"}  # type: ignore[attr-defined]
    assert not again.claimed and not again.settled  # type: ignore[attr-defined]
    # and the next run retries the one and finishes the other.
    later = claim(store, clock, "run-b/1", "run-b", "i1:invitation", "i2:invitation")
    assert later.claimed == {"i1:invitation"}  # type: ignore[attr-defined]
    assert set(later.settled) == {"i2:invitation"}  # type: ignore[attr-defined]


def test_a_release_gives_back_only_the_claimants_own_first_claims(
    store: Store, clock: FrozenClock
) -> None:
    claim(store, clock, "run-a/1", "run-a", "i1:invitation", "i2:invitation")
    claim(store, clock, "run-b/1", "run-b", "i3:invitation")
    clock.advance(STALE + timedelta(seconds=1))
    claim(store, clock, "run-a/1", "run-a", "i3:invitation")  # taken over: attempt 2

    released = store.outbox.release(["i1:invitation", "i3:invitation", "i9:invitation"], "run-b/1")
    assert released == 0  # none of them is run-b's own claim any more
    released = store.outbox.release(["i1:invitation", "i3:invitation"], "run-a/1")

    # i1 is as if never claimed; i3 keeps its attempts (the ledger counts
    # them) and is taken over once stale; i2 was not asked for.
    assert released == 1
    left = {doc["_id"]: doc["state"] for doc in store.db["scheduler_outbox"].find()}
    assert left == {"i2:invitation": "handed", "i3:invitation": "handed"}
    again = claim(store, clock, "run-c/1", "run-c", "i1:invitation")
    assert again.claimed == {"i1:invitation"}  # type: ignore[attr-defined]

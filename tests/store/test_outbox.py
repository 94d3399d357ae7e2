"""The outbox claim: new, failed, dead and live claims."""

from __future__ import annotations

from datetime import timedelta

from formafriend_scheduler.clock import FrozenClock
from formafriend_scheduler.store import Store

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


def test_a_killed_worker_of_the_same_run_is_taken_over_at_once(
    store: Store, clock: FrozenClock
) -> None:
    claim(store, clock, "run-a/1", "run-a", "i1:invitation")
    retry = claim(store, clock, "run-a/2", "run-a", "i1:invitation")
    assert retry.claimed == {"i1:invitation"}  # type: ignore[attr-defined]


def test_failed_messages_are_retried_and_delivered_ones_never(
    store: Store, clock: FrozenClock
) -> None:
    claim(store, clock, "run-a/1", "run-a", "i1:invitation", "i2:invitation")
    store.outbox.settle_each([("i1:invitation", "failed", "451 later")], clock.now(), "run-a/1")
    store.outbox.settle(["i2:invitation"], "sent", clock.now(), "run-a/1")
    later = claim(store, clock, "run-b/2", "run-b", "i1:invitation", "i2:invitation")
    assert later.claimed == {"i1:invitation"}  # type: ignore[attr-defined]
    assert set(later.settled) == {"i2:invitation"}  # type: ignore[attr-defined]

"""scheduler_locks: atomic acquisition, fencing tokens, owner-only renewal."""

from __future__ import annotations

from datetime import timedelta

from formafriend_scheduler.clock import FrozenClock
from formafriend_scheduler.store import Store

TTL = timedelta(seconds=60)


def test_a_free_lock_is_granted_with_token_1(store: Store, clock: FrozenClock) -> None:
    grant = store.locks.try_acquire("cleanup", "run-a", "host-a", 11, clock.now(), TTL)
    assert grant.granted
    assert grant.token == 1
    assert grant.previous is None


def test_a_held_lock_is_refused_and_names_its_holder(store: Store, clock: FrozenClock) -> None:
    store.locks.try_acquire("cleanup", "run-a", "host-a", 11, clock.now(), TTL)
    clock.advance(timedelta(seconds=30))

    grant = store.locks.try_acquire("cleanup", "run-b", "host-b", 22, clock.now(), TTL)

    assert not grant.granted
    assert grant.holder is not None
    assert (grant.holder.run_id, grant.holder.host, grant.holder.pid) == ("run-a", "host-a", 11)


def test_each_job_type_has_its_own_lock(store: Store, clock: FrozenClock) -> None:
    assert store.locks.try_acquire("cleanup", "run-a", "h", 1, clock.now(), TTL).granted
    assert store.locks.try_acquire("reminders", "run-b", "h", 1, clock.now(), TTL).granted


def test_an_expired_lock_is_taken_over_with_the_next_token(
    store: Store, clock: FrozenClock
) -> None:
    store.locks.try_acquire("cleanup", "run-a", "host-a", 11, clock.now(), TTL)
    clock.advance(TTL)

    grant = store.locks.try_acquire("cleanup", "run-b", "host-b", 22, clock.now(), TTL)

    assert grant.granted
    assert grant.token == 2
    assert grant.previous is not None and grant.previous.run_id == "run-a"


def test_a_takeover_won_but_never_written_does_not_block_the_lock(
    store: Store, clock: FrozenClock
) -> None:
    """run-b won token 2 in the claim ledger and died before writing the lock."""
    store.locks.try_acquire("cleanup", "run-a", "host-a", 11, clock.now(), TTL)
    clock.advance(TTL)
    store.claims.take({"lock:cleanup": 2}, "run-b", clock.now(), expiresAt=clock.now() + TTL)

    refused = store.locks.try_acquire("cleanup", "run-c", "host-c", 33, clock.now(), TTL)
    assert not refused.granted and refused.holder is not None
    assert refused.holder.run_id == "run-b"  # its lease runs until it expires
    clock.advance(TTL)
    grant = store.locks.try_acquire("cleanup", "run-c", "host-c", 33, clock.now(), TTL)
    assert grant.granted and grant.token == 3
    holder = store.locks.holder_of("cleanup")
    assert holder is not None and (holder.run_id, holder.token) == ("run-c", 3)


def test_a_released_lock_is_granted_again_without_a_previous_holder(
    store: Store, clock: FrozenClock
) -> None:
    store.locks.try_acquire("cleanup", "run-a", "h", 1, clock.now(), TTL)
    assert store.locks.release("cleanup", "run-a", 1, clock.now())

    grant = store.locks.try_acquire("cleanup", "run-b", "h", 2, clock.now(), TTL)

    assert grant.granted and grant.token == 2 and grant.previous is None


def test_only_the_owner_with_the_current_token_renews_or_releases(
    store: Store, clock: FrozenClock
) -> None:
    store.locks.try_acquire("cleanup", "run-a", "h", 1, clock.now(), TTL)
    clock.advance(TTL)
    store.locks.try_acquire("cleanup", "run-b", "h", 2, clock.now(), TTL)  # takeover, token 2

    assert not store.locks.renew("cleanup", "run-a", 1, clock.now(), TTL)
    assert not store.locks.release("cleanup", "run-a", 1, clock.now())
    assert store.locks.renew("cleanup", "run-b", 2, clock.now(), TTL)
    holder = store.locks.holder_of("cleanup")
    assert holder is not None and holder.run_id == "run-b"
    assert holder.expires_at == clock.now() + TTL


def test_a_retried_grant_of_our_own_is_recognised(store: Store, clock: FrozenClock) -> None:
    # Given the first attempt succeeded on the server but its reply was lost,
    # when the same run asks again, it is told it holds the lock.
    store.locks.try_acquire("cleanup", "run-a", "h", 1, clock.now(), TTL)
    again = store.locks.try_acquire("cleanup", "run-a", "h", 1, clock.now(), TTL)
    assert again.granted and again.token == 1


def test_holders_lists_held_locks_only(store: Store, clock: FrozenClock) -> None:
    store.locks.try_acquire("cleanup", "run-a", "h", 1, clock.now(), TTL)
    store.locks.try_acquire("reminders", "run-b", "h", 1, clock.now(), TTL)
    store.locks.release("reminders", "run-b", 1, clock.now())
    assert [h.run_id for h in store.locks.holders()] == ["run-a"]

"""The lease lock: exactly one live run per job type, across processes."""

from __future__ import annotations

import multiprocessing
from datetime import timedelta
from typing import Any

import pytest

from formafriend_scheduler.clock import FrozenClock, SystemClock
from formafriend_scheduler.config import Settings
from formafriend_scheduler.errors import DatabaseUnavailable, JobLocked
from formafriend_scheduler.lifecycle.lock import Heartbeat, Owner, acquire, stuck_runs
from formafriend_scheduler.store import Store, connect
from formafriend_scheduler.store.locks import LockHolder

TTL = timedelta(seconds=60)


def owner(name: str) -> Owner:
    return Owner(run_id=name, host="test-host", pid=1234)


def test_acquire_refuses_a_held_job_and_says_who_holds_it(store: Store, clock: FrozenClock) -> None:
    acquire(store.locks, "cleanup", owner("run-a"), clock, TTL)
    with pytest.raises(JobLocked, match=r"run run-a on test-host \(pid 1234\) since"):
        acquire(store.locks, "cleanup", owner("run-b"), clock, TTL)


def test_acquire_reports_the_dead_holder_it_took_over(store: Store, clock: FrozenClock) -> None:
    first, _ = acquire(store.locks, "cleanup", owner("run-a"), clock, TTL)
    clock.advance(TTL + timedelta(seconds=1))
    second, previous = acquire(store.locks, "cleanup", owner("run-b"), clock, TTL)
    assert previous is not None and previous.run_id == "run-a"
    assert second.token == first.token + 1


def test_renewal_extends_the_lease(store: Store, clock: FrozenClock) -> None:
    lease, _ = acquire(store.locks, "cleanup", owner("run-a"), clock, TTL)
    clock.advance(timedelta(seconds=40))
    assert lease.renew()
    assert lease.expires_at == clock.now() + TTL
    clock.advance(timedelta(seconds=40))  # past the first expiry, within the renewed one
    assert lease.is_valid()


def test_a_lease_taken_over_is_lost_at_the_next_renewal(store: Store, clock: FrozenClock) -> None:
    lease, _ = acquire(store.locks, "cleanup", owner("run-a"), clock, TTL)
    clock.advance(TTL)
    acquire(store.locks, "cleanup", owner("run-b"), clock, TTL)

    assert not lease.renew()
    assert lease.lost
    assert "taken over" in lease.lost_reason
    assert not lease.release()  # the successor's lock is untouched
    holder = store.locks.holder_of("cleanup")
    assert holder is not None and holder.run_id == "run-b"


def test_a_lease_not_renewed_in_time_is_invalid(store: Store, clock: FrozenClock) -> None:
    lease, _ = acquire(store.locks, "cleanup", owner("run-a"), clock, TTL)
    clock.advance(TTL)
    assert not lease.is_valid()
    assert "ran out" in lease.lost_reason


def test_the_heartbeat_renews_every_third_of_the_ttl(store: Store, clock: FrozenClock) -> None:
    lease, _ = acquire(store.locks, "cleanup", owner("run-a"), clock, TTL)
    waits: list[float] = []
    expiries = []

    def one_beat_per_wait(seconds: float) -> bool:
        # Given time passes by each requested wait, stop after three beats.
        waits.append(seconds)
        clock.advance(timedelta(seconds=seconds))
        expiries.append(lease.expires_at)
        return len(waits) > 3

    heartbeat = Heartbeat(lease, wait=one_beat_per_wait)
    heartbeat.start()
    heartbeat.stop()

    assert waits == [20.0, 20.0, 20.0, 20.0]  # TTL 60 s / 3
    holder = store.locks.holder_of("cleanup")
    assert holder is not None and holder.expires_at == clock.now() - timedelta(seconds=20) + TTL
    assert lease.is_valid()


def test_after_a_failed_renewal_the_heartbeat_retries_within_a_second(
    store: Store, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    lease, _ = acquire(store.locks, "cleanup", owner("run-a"), clock, TTL)
    outage = {"on": True}
    real_renew = type(store.locks).renew

    def flaky_renew(self: Any, *args: Any) -> bool:
        if outage["on"]:
            outage["on"] = False
            raise DatabaseUnavailable("MongoDB unreachable after 5 attempt(s)")
        return real_renew(self, *args)

    monkeypatch.setattr(type(store.locks), "renew", flaky_renew)
    waits: list[float] = []

    def record(seconds: float) -> bool:
        waits.append(seconds)
        clock.advance(timedelta(seconds=seconds))
        return len(waits) > 2

    heartbeat = Heartbeat(lease, wait=record)
    heartbeat.start()
    heartbeat.stop()
    assert waits == [20.0, 1.0, 20.0]


def test_stuck_runs_are_running_records_without_a_live_lease(clock: FrozenClock) -> None:
    now = clock.now()
    live = LockHolder("cleanup", "run-live", "h", 1, 1, now, now + TTL)
    expired = LockHolder("reminders", "run-dead", "h", 1, 1, now - TTL, now - timedelta(seconds=1))
    running = [{"_id": "run-live"}, {"_id": "run-dead"}, {"_id": "run-orphan"}]
    stuck = stuck_runs(running, [live, expired], now)
    assert [record["_id"] for record in stuck] == ["run-dead", "run-orphan"]


def _contend(settings: Settings, name: str, start: Any, results: Any) -> None:
    store = connect(settings)
    start.wait()
    try:
        acquire(store.locks, "cleanup", owner(name), SystemClock(), TTL)
        results.put((name, True))
    except JobLocked:
        results.put((name, False))


@pytest.mark.real_server_only
@pytest.mark.parametrize("lock_before", ["none", "expired", "released"])
def test_of_several_processes_acquiring_at_once_exactly_one_wins(
    settings: Settings, lock_before: str
) -> None:
    if lock_before != "none":
        store = connect(settings)
        long_ago = SystemClock().now() - 3 * TTL
        store.locks.try_acquire("cleanup", "dead-run", "host-0", 1, long_ago, TTL)
        if lock_before == "released":
            store.locks.release("cleanup", "dead-run", 1, long_ago)
    spawn = multiprocessing.get_context("spawn")
    contenders = 6
    start = spawn.Barrier(contenders)
    results = spawn.Queue()
    processes = [
        spawn.Process(target=_contend, args=(settings, f"run-{i}", start, results))
        for i in range(contenders)
    ]
    for process in processes:
        process.start()
    outcomes = [results.get(timeout=60) for _ in processes]
    for process in processes:
        process.join(timeout=30)
    winners = [name for name, won in outcomes if won]
    assert len(winners) == 1
    holder = connect(settings).locks.holder_of("cleanup")
    assert holder is not None and holder.run_id == winners[0]

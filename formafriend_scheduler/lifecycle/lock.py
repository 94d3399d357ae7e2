"""The lease lock: one live run per job type, across processes and hosts.

A run holds a lease for `SCHEDULER_LOCK_TTL_SECONDS`; a heartbeat thread renews
it every third of that. Each grant carries a fencing token; renewal, release
and the run's record updates filter on (run id, token), so once another run
has taken over, the old one can no longer write.
"""

from __future__ import annotations

import logging
import multiprocessing
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from formafriend_scheduler.clock import Clock
from formafriend_scheduler.errors import DatabaseUnavailable, JobLocked
from formafriend_scheduler.store.locks import LockHolder, LockRepository

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Owner:
    run_id: str
    host: str
    pid: int


def describe_holder(holder: LockHolder) -> str:
    return (
        f"run {holder.run_id} on {holder.host} (pid {holder.pid}) "
        f"since {holder.acquired_at:%Y-%m-%d %H:%M:%S}Z, "
        f"lease until {holder.expires_at:%H:%M:%S}Z"
    )


class LeaseMirror:
    """The lease as the run's worker processes see it: its expiry and whether
    it was lost, in shared memory the parent updates at every renewal.

    A worker asks `holds(now)` before each chunk it claims and each message it
    sends. A run paused past its lease (SIGSTOP of its process group) wakes up
    with every worker's clock past the expiry, so none of them claims or sends
    another message, even before the parent's heartbeat learns of a takeover.
    Created in the parent and handed to the workers as a process argument.

    It also carries the run's decision to stop (a signal, a limit): a worker
    then finishes the chunk of messages it is in and claims no other, so a
    batch that sends hundreds of messages ends within seconds of the stop
    instead of at the shutdown grace, when it is cut and its claimed chunk
    waits for the next run to find it stale.
    """

    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")
        self._expires_at = context.Value("d", 0.0)  # seconds since the epoch
        self._lost = context.Value("b", 0)
        self._stopping = context.Value("b", 0)

    def update(self, expires_at: datetime) -> None:
        self._expires_at.value = expires_at.timestamp()

    def lose(self) -> None:
        self._lost.value = 1

    def holds(self, now: datetime) -> bool:
        return not self._lost.value and now.timestamp() < self._expires_at.value

    def stop(self) -> None:
        self._stopping.value = 1

    def stopping(self) -> bool:
        return bool(self._stopping.value)


class Lease:
    def __init__(
        self,
        locks: LockRepository,
        job_type: str,
        owner: Owner,
        token: int,
        clock: Clock,
        ttl: timedelta,
        granted_at: datetime,
    ) -> None:
        self._locks = locks
        self.job_type = job_type
        self.owner = owner
        self.token = token
        self._clock = clock
        self.ttl = ttl
        self.expires_at = granted_at + ttl
        self._lost = threading.Event()
        self.lost_reason = ""
        self.mirror = LeaseMirror()
        self.mirror.update(self.expires_at)

    @property
    def lost(self) -> bool:
        return self._lost.is_set()

    def is_valid(self) -> bool:
        """False once the lease is lost or has run out without a renewal."""
        if self.lost:
            return False
        if self._clock.now() >= self.expires_at:
            self._lose("the lease ran out before it could be renewed")
            return False
        return True

    def renew(self) -> bool:
        """Extend the lease; returns False (and marks it lost) when another run owns it."""
        if self.lost:
            return False
        now = self._clock.now()
        try:
            still_ours = self._locks.renew(
                self.job_type, self.owner.run_id, self.token, now, self.ttl
            )
        except DatabaseUnavailable as error:
            log.warning("could not renew the %s lease: %s", self.job_type, error)
            return self.is_valid()
        if not still_ours:
            self._lose("the lease was taken over by another run")
            return False
        self.expires_at = now + self.ttl
        self.mirror.update(self.expires_at)
        return True

    def release(self, locks: LockRepository | None = None) -> bool:
        """Free the lease (only if still ours), through `locks` if given."""
        return (locks or self._locks).release(
            self.job_type, self.owner.run_id, self.token, self._clock.now()
        )

    def _lose(self, reason: str) -> None:
        if not self.lost:
            self.lost_reason = reason
            self._lost.set()
            self.mirror.lose()
            log.error("%s: %s; stopping", self.job_type, reason)


class Heartbeat:
    """Renews a lease every third of its TTL until stopped or lost.

    After a renewal that could not reach the database it tries again within a
    second, so one slow attempt does not use up the rest of the lease.
    """

    RETRY_SECONDS = 1.0

    def __init__(self, lease: Lease, wait: Callable[[float], bool] | None = None) -> None:
        self._lease = lease
        self._stop = threading.Event()
        # `wait(seconds)` returns True when the heartbeat should stop; tests
        # inject one to drive beats without real time passing.
        self._wait = wait or self._stop.wait
        self._thread = threading.Thread(target=self._loop, name="lease-heartbeat", daemon=True)

    @property
    def interval(self) -> float:
        return self._lease.ttl.total_seconds() / 3

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _loop(self) -> None:
        delay = self.interval
        while not self._wait(delay):
            renewed_until = self._lease.expires_at
            try:
                if not self._lease.renew():
                    return
            except Exception:  # keep beating; is_valid() stops the run at expiry
                log.exception("lease heartbeat failed")
            extended = self._lease.expires_at != renewed_until
            delay = self.interval if extended else min(self.interval, self.RETRY_SECONDS)


def acquire(
    locks: LockRepository,
    job_type: str,
    owner: Owner,
    clock: Clock,
    ttl: timedelta,
    *,
    renewals: LockRepository | None = None,
) -> tuple[Lease, LockHolder | None]:
    """Take the job's lease or raise JobLocked naming the live holder.

    `renewals`, if given, is what the lease renews and releases through: one
    attempt each (the heartbeat tries again within a second), so a renewal
    waiting out a database outage never outlasts the lease it renews.
    Returns the lease and, when an expired lease was taken over, its dead holder.
    """
    now = clock.now()
    grant = locks.try_acquire(job_type, owner.run_id, owner.host, owner.pid, now, ttl)
    if not grant.granted:
        who = describe_holder(grant.holder) if grant.holder else "another run"
        raise JobLocked(f"{job_type} is locked by {who}")
    lease = Lease(renewals or locks, job_type, owner, grant.token, clock, ttl, now)
    return lease, grant.previous


def stuck_runs(
    running: list[dict[str, Any]], holders: list[LockHolder], now: datetime
) -> list[dict[str, Any]]:
    """Job records still `running` that no live lease backs: their run died."""
    live = {holder.run_id for holder in holders if holder.expires_at > now}
    return [record for record in running if record.get("_id") not in live]

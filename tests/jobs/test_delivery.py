"""Delivering a batch: claimed a hundred at a time, sent and recorded per chunk
of twenty; what a stop, a mail server that is down and a lost lease leave."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from bson import ObjectId

from formafriend_scheduler.clock import FrozenClock
from formafriend_scheduler.config import Settings
from formafriend_scheduler.eligibility import Month
from formafriend_scheduler.jobs.delivery import (
    CHUNK_SIZE,
    CLAIM_EVERY,
    Deliverer,
    Outgoing,
)
from formafriend_scheduler.mail.compose import ComposedEmail, Letter
from formafriend_scheduler.mail.ratelimit import RateLimiter
from formafriend_scheduler.mail.setup import composer_for
from formafriend_scheduler.mail.transports import Delivery, Outcome
from formafriend_scheduler.store import Store
from formafriend_scheduler.store.base import WriteReport

STALE = timedelta(minutes=5)


class RecordingTransport:
    """Accepts every message until `down_after` of them, then answers as a
    mail server that cannot be reached."""

    name = "recording"

    def __init__(self, down_after: int | None = None) -> None:
        self.sent: list[str] = []
        self.down_after = down_after

    def deliver(self, email: ComposedEmail, then: ComposedEmail | None = None) -> Delivery:
        if self.down_after is not None and len(self.sent) >= self.down_after:
            return Delivery(Outcome.FAILED, self.name, "connection refused", server_problem=True)
        self.sent.append(email.recipient)
        return Delivery(Outcome.SENT, self.name)

    def close(self) -> None:
        return None


class NoEffects:
    """The app's data are another test's subject."""

    def delivered(self, sent: list[Any], now: datetime) -> WriteReport:
        return WriteReport()

    def bounced(self, bounced: list[Any], now: datetime) -> WriteReport:
        return WriteReport()

    def already_settled(self, settled: list[Any], now: datetime) -> WriteReport:
        return WriteReport()


def messages(count: int) -> list[Outgoing]:
    expires = datetime(2027, 1, 31, tzinfo=UTC)
    out = []
    for index in range(count):
        invitation_id = ObjectId()
        letter = Letter(
            kind="invitation",
            key=str(invitation_id),
            tone="friendly",
            month=Month(2026, 12),
            token=f"{index:064x}",
            expires_at=expires,
            timezone=ZoneInfo("Europe/Paris"),
            sender_name="Alice",
            recipient_email=f"c{index:03d}@x.org",
        )
        out.append(Outgoing({"_id": invitation_id}, None, letter.recipient_email, letter))
    return out


def deliverer(
    store: Store,
    settings: Settings,
    clock: FrozenClock,
    transport: RecordingTransport,
    run_id: str = "run-a",
    *,
    holds_lease: Callable[[], bool] = lambda: True,
    stopping: Callable[[], bool] = lambda: False,
) -> Deliverer:
    return Deliverer(
        store=store,
        transport=transport,
        composer=composer_for(settings),
        rate_limiter=RateLimiter(0, None),
        clock=clock,
        run_id=run_id,
        claimant=f"{run_id}/1",
        stale_after=STALE,
        holds_lease=holds_lease,
        stopping=stopping,
    )


def outbox_states(store: Store) -> dict[str, int]:
    states: dict[str, int] = {}
    for doc in store.db["scheduler_outbox"].find({}, {"state": 1}):
        states[doc["state"]] = states.get(doc["state"], 0) + 1
    return states


def test_messages_are_claimed_a_hundred_at_a_time_and_settled_per_chunk(
    store: Store, settings: Settings, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: dict[str, list[int]] = {"claim": [], "settle": []}
    claim, settle = store.outbox.claim, store.outbox.settle

    def counted_claim(entries: list[Any], *args: Any, **kwargs: Any) -> Any:
        calls["claim"].append(len(entries))
        return claim(entries, *args, **kwargs)

    def counted_settle(settles: list[Any], claimant: str) -> int:
        calls["settle"].append(len(settles))
        return settle(settles, claimant)

    monkeypatch.setattr(store.outbox, "claim", counted_claim)
    monkeypatch.setattr(store.outbox, "settle", counted_settle)
    transport = RecordingTransport()

    counts = deliverer(store, settings, clock, transport).deliver(messages(145), NoEffects())

    assert (CLAIM_EVERY, CHUNK_SIZE) == (100, 20)
    assert calls["claim"] == [100, 45]  # one write per hundred messages
    assert calls["settle"] == [20] * 7 + [5]  # the outcomes of each chunk, as it went
    assert (counts.sent, len(transport.sent)) == (145, 145)
    assert outbox_states(store) == {"sent": 145}


def test_a_stop_gives_back_the_claimed_messages_it_did_not_send(
    store: Store, settings: Settings, clock: FrozenClock
) -> None:
    batch = messages(100)
    transport = RecordingTransport()
    # Given the run is asked to stop while its first chunk goes out,

    def stopping() -> bool:
        return len(transport.sent) >= 1

    counts = deliverer(store, settings, clock, transport, stopping=stopping).deliver(
        batch, NoEffects()
    )

    # it finishes that chunk and gives the other 80 back: nothing is left claimed,
    assert (counts.sent, counts.not_attempted) == (CHUNK_SIZE, 80)
    assert outbox_states(store) == {"sent": CHUNK_SIZE}
    # so the next run sends them at once (not once stale), and nothing twice.
    again = RecordingTransport()
    rerun = deliverer(store, settings, clock, again, "run-b").deliver(batch, NoEffects())
    assert (rerun.sent, rerun.skipped) == (80, CHUNK_SIZE)
    assert sorted(transport.sent + again.sent) == sorted(m.recipient for m in batch)


def test_a_mail_server_that_goes_down_gets_no_more_of_the_claimed_messages(
    store: Store, settings: Settings, clock: FrozenClock
) -> None:
    batch = messages(100)
    transport = RecordingTransport(down_after=CHUNK_SIZE)

    counts = deliverer(store, settings, clock, transport).deliver(batch, NoEffects())

    # The second chunk fails alike (the server), the 60 after it are given back.
    assert (counts.sent, counts.failed, counts.not_attempted) == (20, 20, 60)
    assert counts.server_down
    assert outbox_states(store) == {"sent": 20, "failed": 20}
    again = RecordingTransport()
    rerun = deliverer(store, settings, clock, again, "run-b").deliver(batch, NoEffects())
    assert (rerun.sent, rerun.skipped) == (80, 20)


def test_a_lost_lease_writes_nothing_more_and_leaves_its_claims_until_stale(
    store: Store, settings: Settings, clock: FrozenClock
) -> None:
    batch = messages(100)
    transport = RecordingTransport()
    # Given the lease is lost after 30 messages (mid-chunk),

    def holds() -> bool:
        return len(transport.sent) < 30

    counts = deliverer(store, settings, clock, transport, holds_lease=holds).deliver(
        batch, NoEffects()
    )

    assert counts.fenced and counts.sent == 30
    # then the second chunk's outcomes are not recorded and nothing is given
    # back: the 80 stay claimed by the fenced run,
    assert outbox_states(store) == {"sent": 20, "handed": 80}
    early = deliverer(store, settings, clock, RecordingTransport(), "run-b")
    assert early.deliver(batch, NoEffects()).sent == 0  # busy: maybe still being sent
    # until its claims are stale: then they go once more, the 10 of the
    # chunk in flight twice (the crash bound: at most a chunk).
    clock.advance(STALE + timedelta(seconds=1))
    again = RecordingTransport()
    rerun = deliverer(store, settings, clock, again, "run-c").deliver(batch, NoEffects())
    assert rerun.sent == 80
    twice = set(transport.sent) & set(again.sent)
    assert len(twice) == 10 <= CHUNK_SIZE

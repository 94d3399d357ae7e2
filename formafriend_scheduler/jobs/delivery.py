"""Delivering a batch of e-mails exactly once (shared by monthly-invitations
and reminders).

Per CLAIM_EVERY messages: claim them in the outbox (`handed`); then per
chunk of CHUNK_SIZE of them: send each through the transport and record the
results in the outbox (one bulk of updates by `_id`). A crash can therefore
leave at most one chunk sent and not recorded, which the next run sends
again; the claimed messages not yet sent are sent once their claims are
stale, and a run that stops gives them back at once. The job-specific effects (the invitation
marked sent, a reminder pushed, a contact counted or marked bounced) follow
for every RECORD_EVERY messages: once the outbox knows a message went out it
is never sent again, and the next run finishes effects a stopped run had not
written (Effects.already_settled).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any, Protocol, TypeVar

from formafriend_scheduler.clock import Clock
from formafriend_scheduler.errors import SchedulerError
from formafriend_scheduler.lifecycle.pool import Progress, no_progress_report
from formafriend_scheduler.mail.compose import ComposedEmail, Composer, Letter
from formafriend_scheduler.mail.ratelimit import RateLimiter
from formafriend_scheduler.mail.transports import Delivery, Outcome, Transport
from formafriend_scheduler.store import Store
from formafriend_scheduler.store.base import Document, WriteReport
from formafriend_scheduler.store.outbox import Claim, Settle, outbox_key

log = logging.getLogger(__name__)

CHUNK_SIZE = 20  # messages in flight per worker: the most a crash can duplicate
# Messages claimed in one insert, then sent and recorded per chunk: per 100
# messages one claim instead of five (DocumentDB, monthly, 9,004
# invitations: 0.145 -> 0.105 round trips per invitation). What a crash costs
# stays one chunk sent twice per worker: the claimed messages it had not sent
# yet wait until their claims are stale (SCHEDULER_WORKER_TIMEOUT, 5 min)
# and then go once; a run that stops or meets a mail server that is down
# gives them back (OutboxRepository.release), to go with the next run.
CLAIM_EVERY = 100
# The app's data are written for this many delivered messages at once, not
# per chunk: per 20 messages that is 2 round trips (claim, outcomes) and 0.4
# for the effects instead of 4 (DocumentDB, monthly: 0.28 -> 0.20 round trips
# per invitation). The cost: `tracking.sentAt` (or a reminder's `sentAt`) is
# the time the last of them went out, at most a few seconds late.
RECORD_EVERY = 100
T = TypeVar("T")


@dataclass(frozen=True)
class Outgoing:
    """One message to deliver, and the documents (as read) to update once it went out."""

    invitation: Document
    contact: Document | None
    recipient: str
    letter: Letter

    @property
    def invitation_id(self) -> Any:
        return self.invitation["_id"]

    @cached_property
    def key(self) -> str:
        # Read five times per message (claim, send, settle): formatted once.
        return outbox_key(self.invitation_id, self.letter.kind)


class Effects(Protocol):
    """What a delivered or bounced message changes in the app's data; each
    reports the documents it repaired or could not write."""

    def delivered(self, sent: list[tuple[Outgoing, Delivery]], now: datetime) -> WriteReport: ...

    def bounced(self, bounced: list[tuple[Outgoing, Delivery]], now: datetime) -> WriteReport: ...

    def already_settled(
        self, settled: list[tuple[Outgoing, str]], now: datetime
    ) -> WriteReport: ...


@dataclass
class DeliveryCounts:
    sent: int = 0
    bounced: int = 0
    failed: int = 0
    skipped: int = 0  # delivered by an earlier attempt: not sent again
    not_attempted: int = 0  # left pending because the mail server is down
    repaired: int = 0  # malformed documents whose broken part was replaced
    failed_writes: int = 0  # documents (malformed) that could not record an outcome
    sent_by_kind: Counter[str] = field(default_factory=Counter)
    server_down: bool = False
    fenced: bool = False  # the run lost its lease: nothing more was claimed or sent
    errors: list[str] = field(default_factory=list)


def chunked(items: Iterable[T], size: int) -> Iterator[list[T]]:
    chunk: list[T] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


NEVER = datetime.min.replace(tzinfo=UTC)


@dataclass
class ChunkResult:
    """What one chunk's sending gave, to be recorded in the outbox and then in
    the app's data."""

    sent: list[tuple[Outgoing, Delivery]] = field(default_factory=list)
    bounced: list[tuple[Outgoing, Delivery]] = field(default_factory=list)
    failed: list[tuple[Outgoing, Delivery]] = field(default_factory=list)
    settles: list[Settle] = field(default_factory=list)
    done: datetime = NEVER

    def add(self, other: ChunkResult) -> None:
        """Gather chunks whose effects are written together (at the latest time)."""
        self.sent += other.sent
        self.bounced += other.bounced
        self.failed += other.failed
        self.done = max(self.done, other.done)


SAME_REFUSAL_IS_THE_SERVER = 3


def refused_alike(attempted: list[tuple[Outgoing, Delivery]]) -> bool:
    """Every recipient of a chunk (3 or more) refused with the same reply: the
    server refuses (relaying denied, a blocklist, a blocked sender), whatever
    the mailboxes; a refusal of some recipients is about those recipients."""
    replies = {d.detail for _, d in attempted if d.recipient_refused}
    return (
        len(attempted) >= SAME_REFUSAL_IS_THE_SERVER
        and all(d.recipient_refused for _, d in attempted)
        and len(replies) == 1
    )


def as_server_failure(delivery: Delivery) -> Delivery:
    return Delivery(Outcome.FAILED, delivery.provider, delivery.detail, server_problem=True)


class Deliverer:
    def __init__(
        self,
        *,
        store: Store,
        transport: Transport,
        composer: Composer,
        rate_limiter: RateLimiter,
        clock: Clock,
        run_id: str,
        claimant: str,
        stale_after: timedelta,
        holds_lease: Callable[[], bool] = lambda: True,
        stopping: Callable[[], bool] = lambda: False,
        chunk_size: int = CHUNK_SIZE,
        claim_every: int = CLAIM_EVERY,
        record_every: int = RECORD_EVERY,
    ) -> None:
        self._store = store
        self._transport = transport
        self._composer = composer
        self._rate_limiter = rate_limiter
        self._clock = clock
        self._run_id = run_id
        self._claimant = claimant
        self._stale_after = stale_after
        self._holds_lease = holds_lease
        self._stopping = stopping
        self._chunk_size = chunk_size
        self._claim_every = claim_every
        self._record_every = record_every

    def deliver(
        self, messages: list[Outgoing], effects: Effects, progress: Progress = no_progress_report
    ) -> DeliveryCounts:
        """Claim CLAIM_EVERY messages at once; each chunk of them: send it,
        record its outcomes in the outbox (then `progress()`); the app's data
        every RECORD_EVERY messages and at the end (never once the lease is
        lost: the next run writes them from the outbox)."""
        counts = DeliveryCounts()
        unrecorded = ChunkResult()
        for group in chunked(messages, self._claim_every):
            if self._halted(counts):
                # No point claiming and failing the rest (or no right to, or
                # the run is stopping): they stay pending (queued, no outbox
                # entry) for the next run.
                counts.not_attempted += len(group)
                continue
            claim = self._claim(group, effects, counts)
            claimed = [m for m in group if m.key in claim.claimed]
            for start in range(0, len(claimed), self._chunk_size):
                if self._halted(counts):
                    self._give_back(claimed[start:], counts)
                    break
                result = self._send_chunk(claimed[start : start + self._chunk_size], counts)
                if result is None:
                    continue  # the lease was lost while sending: the rest is given up
                self._store.outbox.settle(result.settles, self._claimant)
                progress()
                unrecorded.add(result)
                if len(unrecorded.sent) + len(unrecorded.bounced) >= self._record_every:
                    self._record(unrecorded, effects, counts)
                    unrecorded = ChunkResult()
        if not counts.fenced and self._holds_lease():
            self._record(unrecorded, effects, counts)
        return counts

    def _halted(self, counts: DeliveryCounts) -> bool:
        """Whether nothing more may be sent: the lease is lost, the mail
        server is down or the run is stopping."""
        if not counts.fenced and not self._holds_lease():
            counts.fenced = True
            log.warning("the run's lease is lost: this worker claims and sends nothing more")
        return counts.server_down or counts.fenced or self._stopping()

    def _give_back(self, unsent: list[Outgoing], counts: DeliveryCounts) -> None:
        """Claimed messages this run will not send: released for the next run
        (none once the lease is lost: they are sent once their claims are stale)."""
        counts.not_attempted += len(unsent)
        if counts.fenced or not unsent:
            return
        try:
            self._store.outbox.release([m.key for m in unsent], self._claimant)
        except SchedulerError as error:
            log.warning(
                "could not give back %d claimed message(s), sent once their claims are stale: %s",
                len(unsent),
                error,
            )

    def _claim(
        self,
        chunk: list[Outgoing],
        effects: Effects,
        counts: DeliveryCounts,
    ) -> Claim:
        """Claim `chunk`; finish the effects of messages an earlier run
        delivered without recording them."""
        now = self._clock.now()
        claim = self._store.outbox.claim(
            [(m.key, m.invitation_id, m.letter.kind) for m in chunk],
            self._claimant,
            self._run_id,
            now,
            stale_before=now - self._stale_after,
        )
        settled = [
            (m, str(claim.settled[m.key].get("state"))) for m in chunk if m.key in claim.settled
        ]
        if settled:
            counts.skipped += len(settled)
            self._note(effects.already_settled(settled, now), counts)
        counts.skipped += sum(1 for m in chunk if m.key in claim.busy)
        return claim

    def _send_chunk(self, claimed: list[Outgoing], counts: DeliveryCounts) -> ChunkResult | None:
        """Send claimed messages; their outcomes, to record (None when the
        lease was lost meanwhile: nothing is written then)."""
        result = ChunkResult()
        # Each message is composed before the one ahead of it is sent, so
        # the transport can open its transaction early (SMTP pipelining);
        # only claimed messages of this chunk, and nothing is delivered
        # before its own turn.
        composed = self._compose(claimed[0]) if claimed else None
        for index, message in enumerate(claimed):
            if not self._holds_lease():
                # Lost meanwhile: send nothing more. The rest stay claimed
                # (`handed`) until stale, when the run that took over sends them.
                counts.fenced = True
                counts.not_attempted += len(claimed) - index
                break
            current = composed
            composed = self._compose(claimed[index + 1]) if index + 1 < len(claimed) else None
            if isinstance(current, Delivery):
                delivery = current  # could not be composed
            else:
                assert current is not None
                self._rate_limiter.wait_turn()
                upcoming = composed if isinstance(composed, ComposedEmail) else None
                delivery = self._transport.deliver(current, upcoming)
            {Outcome.SENT: result.sent, Outcome.BOUNCED: result.bounced}.get(
                delivery.outcome, result.failed
            ).append((message, delivery))
        if refused_alike(result.sent + result.bounced + result.failed):
            # Nobody is marked bounced for what is the server refusing everyone.
            result.failed = [(m, as_server_failure(d)) for m, d in result.bounced + result.failed]
            result.bounced = []
        if not self._holds_lease():
            # Lost while sending: no record, no effect. The run that took over
            # sends these again once their claims are stale: at most the chunk.
            counts.fenced = True
            counts.sent += len(result.sent)
            return None
        result.done = self._clock.now()
        result.settles = [
            Settle(m.key, state, d.detail, result.done)
            for state, outcomes in (
                ("sent", result.sent),
                ("bounced", result.bounced),
                ("failed", result.failed),
            )
            for m, d in outcomes
        ]
        counts.sent += len(result.sent)
        counts.sent_by_kind.update(m.letter.kind for m, _ in result.sent)
        counts.bounced += len(result.bounced)
        counts.failed += len(result.failed)
        attempted = len(result.sent) + len(result.bounced) + len(result.failed)
        if (
            attempted
            and all(d.server_problem for _, d in result.failed)
            and (len(result.failed) == attempted)
        ):
            counts.server_down = True
        for message, delivery in result.failed[:5]:
            counts.errors.append(f"{message.recipient}: {delivery.detail}")
        return result

    def _record(self, result: ChunkResult, effects: Effects, counts: DeliveryCounts) -> None:
        """The app's data, for messages the outbox already knows the outcome of."""
        if result.sent:
            self._note(effects.delivered(result.sent, result.done), counts)
        if result.bounced:
            self._note(effects.bounced(result.bounced, result.done), counts)

    @staticmethod
    def _note(report: WriteReport, counts: DeliveryCounts) -> None:
        """A malformed document is isolated: the others were written; it is
        counted and logged by its id, repaired where its broken part could be
        replaced (tracking or reminders that are not a document or an array)."""
        for doc_id in report.repaired:
            log.warning("document %s was malformed (a field of the wrong type): repaired", doc_id)
        for doc_id, reason in report.failed.items():
            log.warning(
                "document %s could not be updated (%s); the outbox keeps its message's "
                "outcome, so it is not sent again",
                doc_id,
                reason,
            )
            counts.errors.append(f"document {doc_id}: {reason}")
        counts.repaired += len(report.repaired)
        counts.failed_writes += len(report.failed)

    def _compose(self, message: Outgoing) -> ComposedEmail | Delivery:
        """The message, or the failure to compose it."""
        try:
            return self._composer.compose(message.letter, self._clock.now())
        except Exception as error:  # a template or a value that cannot be rendered
            log.error("could not compose %s: %s", message.key, error)
            return Delivery(Outcome.FAILED, self._transport.name, f"compose: {error}")

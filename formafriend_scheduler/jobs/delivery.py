"""Delivering a batch of e-mails exactly once (shared by monthly-invitations
and reminders).

Per chunk of messages: claim them in the outbox (`handed`), send each through
the transport, then record the results: the job-specific effects first (the
invitation marked sent, a reminder pushed, a contact marked bounced), then the
outbox state. A crash can therefore leave at most one chunk `handed`, which
the next run sends again.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol, TypeVar

from formafriend_scheduler.clock import Clock
from formafriend_scheduler.mail.compose import Composer, Letter
from formafriend_scheduler.mail.ratelimit import RateLimiter
from formafriend_scheduler.mail.transports import Delivery, Outcome, Transport
from formafriend_scheduler.store import Store
from formafriend_scheduler.store.base import Document, WriteReport
from formafriend_scheduler.store.outbox import outbox_key

log = logging.getLogger(__name__)

CHUNK_SIZE = 20  # messages in flight per worker: the most a crash can duplicate
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

    @property
    def key(self) -> str:
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
        chunk_size: int = CHUNK_SIZE,
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
        self._chunk_size = chunk_size

    def deliver(self, messages: list[Outgoing], effects: Effects) -> DeliveryCounts:
        counts = DeliveryCounts()
        for chunk in chunked(messages, self._chunk_size):
            if not counts.fenced and not self._holds_lease():
                counts.fenced = True
                log.warning("the run's lease is lost: this worker claims and sends nothing more")
            if counts.server_down or counts.fenced:
                # No point claiming and failing the rest (or no right to): they
                # stay pending (queued, no outbox entry) for the next run.
                counts.not_attempted += len(chunk)
                continue
            self._deliver_chunk(chunk, effects, counts)
        return counts

    def _deliver_chunk(
        self, chunk: list[Outgoing], effects: Effects, counts: DeliveryCounts
    ) -> None:
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

        sent: list[tuple[Outgoing, Delivery]] = []
        bounced: list[tuple[Outgoing, Delivery]] = []
        failed: list[tuple[Outgoing, Delivery]] = []
        for message in (m for m in chunk if m.key in claim.claimed):
            if not self._holds_lease():
                # Lost meanwhile: send nothing more. The rest stay claimed
                # (`handed`) until stale, when the run that took over sends them.
                counts.fenced = True
                counts.not_attempted += 1
                continue
            delivery = self._send(message)
            {Outcome.SENT: sent, Outcome.BOUNCED: bounced, Outcome.FAILED: failed}[
                delivery.outcome
            ].append((message, delivery))

        if refused_alike(sent + bounced + failed):  # nobody is marked bounced for it
            failed = [(m, as_server_failure(d)) for m, d in bounced + failed]
            bounced = []
        if not self._holds_lease():
            # Lost while sending: no settle, no effect. The run that took over
            # sends these again once their claims are stale: at most the chunk.
            counts.fenced = True
            counts.sent += len(sent)
            return
        done = self._clock.now()
        # The outbox first: once a message is known delivered it is never sent
        # again, even if the run stops before the app's data say so (the next
        # run finishes those writes from the outbox: Effects.already_settled).
        if sent:
            self._store.outbox.settle([m.key for m, _ in sent], "sent", done, self._claimant)
            self._note(effects.delivered(sent, done), counts)
        outcomes = [(m.key, "bounced", d.detail) for m, d in bounced]
        outcomes += [(m.key, "failed", d.detail) for m, d in failed]
        self._store.outbox.settle_each(outcomes, done, self._claimant)
        if bounced:
            self._note(effects.bounced(bounced, done), counts)

        counts.sent += len(sent)
        counts.sent_by_kind.update(m.letter.kind for m, _ in sent)
        counts.bounced += len(bounced)
        counts.failed += len(failed)
        attempted = len(sent) + len(bounced) + len(failed)
        if attempted and all(d.server_problem for _, d in failed) and len(failed) == attempted:
            counts.server_down = True
        for message, delivery in failed[:5]:
            counts.errors.append(f"{message.recipient}: {delivery.detail}")

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

    def _send(self, message: Outgoing) -> Delivery:
        try:
            email = self._composer.compose(message.letter, self._clock.now())
        except Exception as error:  # a template or a value that cannot be rendered
            log.error("could not compose %s: %s", message.key, error)
            return Delivery(Outcome.FAILED, self._transport.name, f"compose: {error}")
        self._rate_limiter.wait_turn()
        return self._transport.deliver(email)

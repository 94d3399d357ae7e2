"""`scheduler_outbox`: the delivery state of each e-mail, kept out of the app's
invitations (whose status enum is fixed).

One document per message, `_id` = "<invitation id>:<kind>". A message is
claimed by inserting (or taking over) its document in state `handed` just
before it is handed to SMTP, so a crash can only leave `handed` the messages
that were in flight; the next run sends those again (at most once more).

    handed -> sent | bounced | failed;  failed, or handed by a dead claimant -> handed
    handed, never given to SMTP, by a run that stops -> (no entry)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pymongo import DeleteOne

from formafriend_scheduler.clock import to_utc
from formafriend_scheduler.store.base import DatabaseHandle, Document, Insert, Repository, Update
from formafriend_scheduler.store.claims import ClaimLedger, number_of
from formafriend_scheduler.store.retry import transient

FINAL_STATES = ("sent", "bounced")


def _current_claim(doc: Document | None, ledger_claim: Document | None) -> Document | None:
    """The entry as its latest claim left it: a ledger claim newer than the
    entry's `attempts` is a takeover whose winner has not (or never) written
    the entry; it counts as `handed` by that winner since it was won."""
    if ledger_claim is not None and number_of(ledger_claim, "n") > number_of(doc, "attempts"):
        return {
            "state": "handed",
            "claimant": ledger_claim.get("by"),
            "runId": ledger_claim.get("runId"),
            "claimedAt": ledger_claim.get("at"),
            "attempts": ledger_claim.get("n"),
        }
    return doc


def _takeable(current: Document, run_id: str, stale_before: datetime) -> bool:
    """Failed, or handed by a claimant that cannot still be sending it."""
    if current.get("state") == "failed":
        return True
    if current.get("state") != "handed":
        return False
    claimed_at = current.get("claimedAt")
    return (
        current.get("runId") == run_id
        or not isinstance(claimed_at, datetime)
        or to_utc(claimed_at) < stale_before
    )


def outbox_key(invitation_id: Any, kind: str) -> str:
    return f"{invitation_id}:{kind}"


def claim_document(
    key: str, invitation_id: Any, kind: str, claimant: str, run_id: str, now: datetime
) -> Document:
    """A new entry, `handed` to `claimant` by its first attempt."""
    return {
        "_id": key,
        "invitationId": invitation_id,
        "kind": kind,
        "state": "handed",
        "runId": run_id,
        "claimant": claimant,
        "attempts": 1,
        "claimedAt": now,
        "updatedAt": now,
    }


@dataclass(frozen=True)
class Settle:
    """A message's outcome, to record: `sent`, `bounced` or `failed` (with
    the server's reply)."""

    key: str
    state: str
    detail: str
    at: datetime

    def update(self, claimant: str) -> Update:
        """Only the claimant's own entry: one taken over meanwhile is left alone."""
        fields: Document = {"state": self.state, "updatedAt": self.at}
        if self.state == "sent":
            fields["settledAt"] = self.at
        else:
            fields["lastError"] = self.detail
        return Update({"_id": self.key, "claimant": claimant}, {"$set": fields})


@dataclass
class Claim:
    claimed: set[str] = field(default_factory=set)
    # Already delivered (or bounced) by an earlier attempt, with that state.
    settled: dict[str, Document] = field(default_factory=dict)
    # Held by another claimant that is still working on it.
    busy: set[str] = field(default_factory=set)
    # Settled by this same run already (sent, bounced or failed): counted
    # once, left for the next run to finish or retry.
    deferred: set[str] = field(default_factory=set)


class OutboxRepository(Repository):
    collection_name = "scheduler_outbox"

    def __init__(self, handle: DatabaseHandle, ledger: ClaimLedger) -> None:
        super().__init__(handle)
        self._ledger = ledger

    @transient
    def claim(
        self,
        entries: list[tuple[str, Any, str]],  # (key, invitation id, kind)
        claimant: str,
        run_id: str,
        now: datetime,
        stale_before: datetime,
    ) -> Claim:
        """Claim messages for sending. New ones are inserted `handed`.

        An existing entry is taken over when its last attempt `failed`, or
        when it is `handed` by a claimant that cannot still be sending it: a
        worker of this same run (the pool only retries a batch after killing
        the worker that had it) or a claim older than `stale_before` (a run
        that died). Delivered ones are reported as settled: never sent again.
        Anything else is busy: another live claimant holds it. One this same
        run has already settled is deferred: a run tries each message once
        (its first pass sends what it creates; its sending pass must not
        count those again), and the next run finishes or retries it.
        """
        if not entries:
            return Claim()
        docs = [
            claim_document(key, invitation_id, kind, claimant, run_id, now)
            for key, invitation_id, kind in entries
        ]
        # Inserts, not upserts that would share one `update` command with the
        # previous chunk's settles (0.05 round trips per message saved):
        # FerretDB v1 stalls until its timeout when two claimants upsert the
        # same keys at once, and FerretDB v2 + DocumentDB answers such a race
        # with `upserted` for the same key to more than one claimant (4
        # claimants racing for 60 keys, 5 trials: 2 to 3 keys "created" by 2
        # or 3 of them in 3 trials; measured 2026-12-06), which would send
        # those messages twice. A duplicate `_id` on insert is refused
        # everywhere.
        outcome = self.tolerant_bulk_write([Insert(doc) for doc in docs])
        existing = [docs[index]["_id"] for index in outcome.duplicates]
        claim = Claim(claimed={doc["_id"] for doc in docs} - set(existing))
        if existing:
            self._take_over(existing, claim, claimant, run_id, now, stale_before)
        return claim

    def _take_over(
        self,
        keys: list[str],
        claim: Claim,
        claimant: str,
        run_id: str,
        now: datetime,
        stale_before: datetime,
    ) -> None:
        """Sort existing entries into settled, ours, takeable and busy; take
        the takeable ones through the claim ledger (one winner each)."""
        found = {doc["_id"]: doc for doc in self.collection.find({"_id": {"$in": keys}})}
        latest = self._ledger.latest(keys)
        wanted: dict[str, int] = {}
        for key in keys:
            doc = found.get(key)
            if doc is not None and doc.get("runId") == run_id and doc.get("state") != "handed":
                claim.deferred.add(key)
                continue
            if doc is not None and doc.get("state") in FINAL_STATES:
                claim.settled[key] = doc
                continue
            current = _current_claim(doc, latest.get(key))
            if current is None:
                claim.busy.add(key)  # pruned meanwhile: the next run sees it anew
            elif current.get("claimant") == claimant:
                if current.get("state") == "handed":
                    claim.claimed.add(key)  # our own claim, asked for again
                else:
                    claim.busy.add(key)
            elif _takeable(current, run_id, stale_before):
                wanted[key] = number_of(current, "attempts") + 1
            else:
                claim.busy.add(key)
        won = self._ledger.take(wanted, claimant, now, runId=run_id)
        claim.busy |= set(wanted) - won
        self.tolerant_bulk_write(
            [
                Update(
                    {"_id": key},
                    {
                        "$set": {
                            "state": "handed",
                            "runId": run_id,
                            "claimant": claimant,
                            "claimedAt": now,
                            "updatedAt": now,
                            "attempts": wanted[key],
                        }
                    },
                )
                for key in sorted(won)
            ]
        )
        claim.claimed |= won

    @transient
    def settle(self, settles: list[Settle], claimant: str) -> int:
        """Record outcomes: one bulk of updates by `_id` (an `update_many` over
        `$in` scans the collection on some servers)."""
        return self.tolerant_bulk_write([settle.update(claimant) for settle in settles]).applied

    @transient
    def release(self, keys: list[str], claimant: str) -> int:
        """Give back claims whose messages were never given to SMTP (the run
        is stopping, or the mail server is down): as if never claimed, so the
        next run sends them at once instead of once the claims are stale.
        Only this claimant's first claims (`attempts` 1): an entry it took
        over is left `handed`, to be taken over once stale, so the claim
        ledger's count of its attempts stays true. By `_id` in bulk: a
        `delete_many` over `$in` beside other fields may be planned on another
        index (see Repository.batched_update)."""
        if not keys:
            return 0
        mine: Document = {"claimant": claimant, "state": "handed", "attempts": 1}
        if self._handle.in_process:  # mongomock cannot take current pymongo's bulks
            return self.collection.delete_many({"_id": {"$in": keys}, **mine}).deleted_count
        requests = [DeleteOne({"_id": key, **mine}) for key in keys]
        return self.collection.bulk_write(requests, ordered=False).deleted_count

    @transient
    def prune(self, before: datetime, limit: int) -> int:
        return self.batched_delete(
            {"state": {"$in": list(FINAL_STATES)}, "updatedAt": {"$lt": before}}, limit
        )

    @transient
    def count_prunable(self, before: datetime) -> int:
        return self.collection.count_documents(
            {"state": {"$in": list(FINAL_STATES)}, "updatedAt": {"$lt": before}}
        )

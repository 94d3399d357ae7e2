"""`scheduler_outbox`: the delivery state of each e-mail, kept out of the app's
invitations (whose status enum is fixed).

One document per message, `_id` = "<invitation id>:<kind>". A message is
claimed by inserting (or taking over) its document in state `handed` just
before it is handed to SMTP, so a crash can only leave `handed` the messages
that were in flight; the next run sends those again (at most once more).

    handed -> sent | bounced | failed;  failed, or handed by a dead claimant -> handed
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from formafriend_scheduler.store.base import Document, Insert, Repository
from formafriend_scheduler.store.retry import transient

FINAL_STATES = ("sent", "bounced")


def outbox_key(invitation_id: Any, kind: str) -> str:
    return f"{invitation_id}:{kind}"


@dataclass
class Claim:
    claimed: set[str] = field(default_factory=set)
    # Already delivered (or bounced) by an earlier attempt, with that state.
    settled: dict[str, Document] = field(default_factory=dict)
    # Held by another claimant that is still working on it.
    busy: set[str] = field(default_factory=set)


class OutboxRepository(Repository):
    collection_name = "scheduler_outbox"

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
        Anything else is busy: another live claimant holds it.
        """
        if not entries:
            return Claim()
        docs = [
            {
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
            for key, invitation_id, kind in entries
        ]
        outcome = self.tolerant_bulk_write([Insert(doc) for doc in docs])
        existing = [docs[index]["_id"] for index in outcome.duplicates]
        claim = Claim(claimed={doc["_id"] for doc in docs} - set(existing))
        if not existing:
            return claim
        self.collection.update_many(
            {
                "_id": {"$in": existing},
                "claimant": {"$ne": claimant},
                "$or": [
                    {"state": "failed"},
                    {"state": "handed", "runId": run_id},
                    {"state": "handed", "claimedAt": {"$lt": stale_before}},
                    {"state": "handed", "claimedAt": {"$exists": False}},
                ],
            },
            {
                "$set": {
                    "state": "handed",
                    "runId": run_id,
                    "claimant": claimant,
                    "claimedAt": now,
                    "updatedAt": now,
                },
                "$inc": {"attempts": 1},
            },
        )
        for doc in self.collection.find({"_id": {"$in": existing}}):
            if doc.get("claimant") == claimant and doc.get("state") == "handed":
                claim.claimed.add(doc["_id"])
            elif doc.get("state") in FINAL_STATES:
                claim.settled[doc["_id"]] = doc
            else:
                claim.busy.add(doc["_id"])
        return claim

    @transient
    def settle(self, keys: list[str], state: str, now: datetime, claimant: str) -> int:
        if not keys:
            return 0
        result = self.collection.update_many(
            {"_id": {"$in": keys}, "claimant": claimant},
            {"$set": {"state": state, "settledAt": now, "updatedAt": now}},
        )
        return result.modified_count

    @transient
    def settle_each(
        self, outcomes: list[tuple[str, str, str]], now: datetime, claimant: str
    ) -> int:
        """(key, state, detail) for failed or bounced messages: the reason is kept.

        One update per distinct (state, reason): when a server is down every
        message fails the same way, and that stays one write per chunk.
        """
        groups: dict[tuple[str, str], list[str]] = {}
        for key, state, detail in outcomes:
            groups.setdefault((state, detail), []).append(key)
        changed = 0
        for (state, detail), keys in groups.items():
            result = self.collection.update_many(
                {"_id": {"$in": keys}, "claimant": claimant},
                {"$set": {"state": state, "lastError": detail, "updatedAt": now}},
            )
            changed += result.modified_count
        return changed

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

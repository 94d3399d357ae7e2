"""What a worker does for monthly-invitations: create a batch of users'
invitations, or send a batch of queued invitations.

Built in the worker process from a picklable factory, so each worker has its
own MongoClient, SMTP connection and template environment.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from formafriend_scheduler.clock import Clock
from formafriend_scheduler.config import Settings
from formafriend_scheduler.eligibility import (
    Month,
    contact_skip_reason,
    due_for,
    subdocument,
)
from formafriend_scheduler.jobs.delivery import Deliverer, Outgoing
from formafriend_scheduler.jobs.letters import MalformedDocument, letter_for
from formafriend_scheduler.jobs.mailing import BounceEffects, defaults_of, worker_deliverer
from formafriend_scheduler.mail.transports import Delivery, Transport
from formafriend_scheduler.pool import Task, TaskResult
from formafriend_scheduler.store import Store
from formafriend_scheduler.store.invitations import new_invitation

log = logging.getLogger(__name__)

CREATE = "create"
SEND = "send"


class InvitationEffects(BounceEffects):
    """A sent invitation moves queued -> sent and counts on its contact; a hard
    bounce marks both the invitation and the contact."""

    def delivered(self, sent: list[tuple[Outgoing, Delivery]], now: datetime) -> None:
        by_provider: dict[str, list[Any]] = defaultdict(list)
        for message, delivery in sent:
            by_provider[delivery.provider].append(message.invitation_id)
        for provider, ids in by_provider.items():
            self._store.invitations.mark_sent(ids, now, provider)
        contacts = [m.contact_id for m, _ in sent if m.contact_id is not None]
        self._store.contacts.record_sent(contacts, now)

    def already_settled(self, settled: list[tuple[Outgoing, str]], now: datetime) -> None:
        # The outbox says delivered but the invitation is still queued: the run
        # stopped between the two writes. Finish the write; never send again.
        delivered = [m.invitation_id for m, state in settled if state == "sent"]
        self._store.invitations.mark_sent(delivered, now, "unknown")


@dataclass
class MonthlyWorker:
    settings: Settings
    clock: Clock
    month: Month
    run_id: str
    dry_run: bool
    store: Store
    transport: Transport
    deliverer: Deliverer

    def __call__(self, task: Task) -> TaskResult:
        if task.kind == CREATE:
            return self.create(task)
        return self.send(task)

    def close(self) -> None:
        self.transport.close()
        self.store.close()

    # -- creating ---------------------------------------------------------

    def create(self, task: Task) -> TaskResult:
        now = self.clock.now()
        stats: Counter[str] = Counter()
        errors: list[str] = []
        defaults = defaults_of(self.settings)
        moments = {}
        for user in self.store.users.load(list(task.items)):
            due = due_for(user, self.month, now, defaults)
            if due.due:  # checked again: the run may have waited since selection
                moments[user["_id"]] = (user, due.moment)
        contacts_by_owner: dict[Any, list[dict[str, Any]]] = defaultdict(list)
        for contact in self.store.contacts.of_owners(list(moments)):
            contacts_by_owner[contact.get("ownerId")].append(contact)

        lifetime = timedelta(days=self.settings.invitation_expiry_days)
        docs, owners_of_docs = [], []
        for user_id, (user, _) in moments.items():
            preferences = subdocument(user, "preferences")
            seen: set[str] = set()
            for contact in contacts_by_owner.get(user_id, []):
                reason = contact_skip_reason(contact)
                email = str(contact.get("email", "")).strip().lower()
                if reason is None and email in seen:
                    reason = "duplicate"
                if reason is not None:
                    stats["skippedContacts"] += 1
                    stats["skipped" + reason[0].upper() + reason[1:]] += 1
                    if reason == "malformed":
                        log.warning(
                            "skipped malformed contact %s of user %s", contact.get("_id"), user_id
                        )
                    continue
                seen.add(email)
                docs.append(
                    new_invitation(
                        from_user_id=user_id,
                        to_email=email,
                        to_user_id=contact.get("contactUserId"),
                        month=str(self.month),
                        template=str(preferences.get("emailTemplate") or "friendly"),
                        custom_message=_custom_message(preferences),
                        now=now,
                        lifetime=lifetime,
                    )
                )
                owners_of_docs.append(user_id)

        failed_owners: set[Any] = set()
        if self.dry_run:
            existing = self.store.invitations.existing_recipients(list(moments), str(self.month))
            fresh = [d for d in docs if (d["fromUserId"], d["toEmail"]) not in existing]
            stats["createdInvitations"] += len(fresh)
            stats["alreadyInvited"] += len(docs) - len(fresh)
        else:
            outcome = self.store.invitations.insert_new(docs)
            stats["alreadyInvited"] += len(outcome.duplicates)
            stats["createdInvitations"] += len(docs) - len(outcome.duplicates) - len(outcome.errors)
            for index, reason in outcome.errors.items():
                stats["failedCreates"] += 1
                errors.append(f"create for user {owners_of_docs[index]}: {reason}")
                failed_owners.add(owners_of_docs[index])
            # A user whose invitations all exist now has had this month's cycle.
            complete = {uid: m for uid, (_, m) in moments.items() if uid not in failed_owners}
            self.store.users.complete_cycles(complete, now)
        stats["processedUsers"] += len(moments)
        stats["batchesProcessed"] += 1
        return TaskResult(task.task_id, task.kind, dict(stats), errors)

    # -- sending ------------------------------------------------------------

    def send(self, task: Task) -> TaskResult:
        stats: Counter[str] = Counter()
        errors: list[str] = []
        invitations = self.store.invitations.load_queued(list(task.items))
        senders = {
            u["_id"]: u for u in self.store.users.load({i.get("fromUserId") for i in invitations})
        }
        pairs = {(i.get("fromUserId"), str(i.get("toEmail", "")).lower()) for i in invitations}
        contacts = self.store.contacts.by_owner_and_email(pairs)
        defaults = defaults_of(self.settings)
        outgoing = []
        for invitation in invitations:
            pair = (invitation.get("fromUserId"), str(invitation.get("toEmail", "")).lower())
            contact = contacts.get(pair)
            try:
                letter = letter_for(
                    "invitation", invitation, senders.get(pair[0]), contact, defaults
                )
            except MalformedDocument as error:
                stats["malformedInvitations"] += 1
                log.warning("skipped: %s", error)
                continue
            outgoing.append(
                Outgoing(
                    invitation["_id"],
                    contact.get("_id") if contact else None,
                    letter.recipient_email,
                    letter,
                )
            )
        stats["totalInvitations"] += len(outgoing)
        counts = self.deliverer.deliver(outgoing, InvitationEffects(self.store))
        stats["sentInvitations"] += counts.sent
        stats["bouncedInvitations"] += counts.bounced
        stats["failedInvitations"] += counts.failed + counts.not_attempted
        stats["notAttempted"] += counts.not_attempted
        stats["alreadySent"] += counts.skipped
        stats["smtpDown"] += int(counts.server_down)
        stats["batchesProcessed"] += 1
        errors.extend(counts.errors)
        return TaskResult(task.task_id, task.kind, dict(stats), errors)


def _custom_message(preferences: dict[str, Any]) -> str | None:
    value = preferences.get("customMessage")
    return value[:500] if isinstance(value, str) and value.strip() else None


@dataclass(frozen=True)
class MonthlyWorkerFactory:
    """Picklable recipe for a worker: everything is built in the worker process."""

    settings: Settings
    clock: Clock
    month: Month
    run_id: str
    dry_run: bool
    rate_slot: Any  # shared by all workers (mailing.shared_rate_slot)

    def __call__(self) -> MonthlyWorker:
        store, transport, deliverer = worker_deliverer(
            self.settings, self.clock, self.run_id, self.rate_slot
        )
        return MonthlyWorker(
            self.settings,
            self.clock,
            self.month,
            self.run_id,
            self.dry_run,
            store,
            transport,
            deliverer,
        )

"""What a worker does for monthly-invitations: create a batch of users'
invitations and send them, or send a batch of queued invitations.

Sending what a batch has just created, in the same task, saves reading it all
back: the month's queued invitations page by page in the parent, then each
batch's invitations, senders and contacts in a worker (monthly, in-process,
9,004 invitations: about 40 µs of CPU and 0.05 round trips per invitation).
The sending pass still follows, for what this pass did not send.

Built in the worker process from a picklable factory, so each worker has its
own MongoClient, SMTP connection and template environment.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar

from formafriend_scheduler.clock import Clock
from formafriend_scheduler.config import Settings
from formafriend_scheduler.eligibility import (
    Month,
    contact_skip_reason,
    cycle_update,
    due_for,
    is_active_sender,
    subdocument,
)
from formafriend_scheduler.jobs.delivery import Deliverer, Outgoing
from formafriend_scheduler.jobs.letters import Letters, MalformedDocument
from formafriend_scheduler.jobs.mailing import BounceEffects, defaults_of, worker_deliverer
from formafriend_scheduler.lifecycle.lock import LeaseMirror
from formafriend_scheduler.lifecycle.pool import Progress, Task, TaskResult
from formafriend_scheduler.mail.transports import Delivery, Transport
from formafriend_scheduler.store import Store
from formafriend_scheduler.store.base import Document, WriteReport
from formafriend_scheduler.store.invitations import new_invitation

log = logging.getLogger(__name__)

CREATE = "create"  # create the invitations of a batch of users (a dry run; sending halted)
CREATE_AND_SEND = "create-and-send"  # ... and send the ones created
SEND = "send"  # send a batch of queued invitations


class InvitationEffects(BounceEffects):
    """A sent invitation moves queued -> sent and counts on its contact; a hard
    bounce marks both the invitation and the contact."""

    bounce_from: ClassVar[list[str | None]] = ["queued", None]

    def delivered(self, sent: list[tuple[Outgoing, Delivery]], now: datetime) -> WriteReport:
        report = self._store.invitations.mark_sent(
            [(m.invitation, d.provider) for m, d in sent], now
        )
        report.add(self._store.contacts.record_sent([m.contact for m, _ in sent if m.contact], now))
        return report

    def already_settled(self, settled: list[tuple[Outgoing, str]], now: datetime) -> WriteReport:
        # The outbox says delivered but the invitation is still queued: the run
        # stopped before writing the app's data (both are written together,
        # the invitation first). Finish them; never send again.
        delivered = [m for m, state in settled if state == "sent"]
        report = self._store.invitations.mark_sent(
            [(m.invitation, "unknown") for m in delivered], now
        )
        report.add(
            self._store.contacts.record_sent([m.contact for m in delivered if m.contact], now)
        )
        return report


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
    lease: LeaseMirror
    # When this scheduler took over from the Node.js service, if that may
    # fall after the month's invitations began (else None: nothing to check).
    switch_over: datetime | None = None

    def __call__(self, task: Task, progress: Progress) -> TaskResult:
        if not self.lease.holds(self.clock.now()):
            # The run lost its lease: another run owns the job now; this
            # batch is neither created nor sent here.
            return TaskResult(task.task_id, task.kind, {"leaseLost": 1})
        if task.kind == SEND:
            return self.send(task, progress)
        return self.create(task, progress if task.kind == CREATE_AND_SEND else None)

    def close(self) -> None:
        self.transport.close()
        self.store.close()

    # -- creating ---------------------------------------------------------

    def create(self, task: Task, sending: Progress | None) -> TaskResult:
        """The batch's invitations, its cycle markers and statistics; then,
        when `sending`, the invitations it created go out (reporting
        progress there); the ones that existed already wait for the
        sending pass."""
        now = self.clock.now()
        month = str(self.month)
        stats: Counter[str] = Counter()
        errors: list[str] = []
        defaults = defaults_of(self.settings)
        users = self.store.users.load(list(task.items))
        done = self.store.cycles.completed([u["_id"] for u in users], month)
        due = {}
        for user in users:
            # Checked again: the run may have waited since it listed this user.
            verdict = due_for(user, self.month, now, defaults)
            if verdict.due and user["_id"] not in done:
                due[user["_id"]] = (user, verdict)
                if verdict.problems:
                    stats["invalidPreferences"] += 1
                    log.info(
                        "user %s: %s; using the defaults", user["_id"], "; ".join(verdict.problems)
                    )
        contacts_by_owner: dict[Any, list[dict[str, Any]]] = defaultdict(list)
        for contact in self.store.contacts.of_owners(list(due)):
            contacts_by_owner[contact.get("ownerId")].append(contact)

        created: list[tuple[Document, Document]] = []  # (invitation, its contact)
        for user_id, (user, _) in due.items():
            created += self._invitations_for(user, contacts_by_owner.get(user_id, []), now, stats)
        docs = [doc for doc, _ in created]

        if self.dry_run:
            existing = self.store.invitations.existing_recipients(list(due), month)
            fresh = [d for d in docs if (d["fromUserId"], d["toEmail"]) not in existing]
            stats["createdInvitations"] += len(fresh)
            stats["alreadyInvited"] += len(docs) - len(fresh)
        else:
            failed_owners, inserted = self._insert(docs, stats, errors)
            completed = [uid for uid in due if uid not in failed_owners]
            if not self.lease.holds(self.clock.now()):
                completed = []  # no marker from a run that lost its lease
            # Read before the markers go in: once a marker exists no run comes
            # back to this user's statistics, so nothing may fail in between.
            by_original = self._counted_by_original(completed)
            newly = self.store.cycles.complete(completed, month, self.run_id, now)
            recorded = self.store.users.record_cycles(
                [
                    (
                        due[uid][0],
                        cycle_update(
                            due[uid][0],
                            due[uid][1].moment,
                            due[uid][1].next_moment,
                            now,
                            counted_by_original=uid in by_original,
                        ),
                    )
                    for uid in completed
                    if uid in newly
                ]
            )
            stats["repairedDocuments"] += len(recorded.repaired)
            stats["failedWrites"] += len(recorded.failed)
            for user_id, reason in recorded.failed.items():
                log.warning(
                    "user %s: could not record the cycle's statistics (%s)", user_id, reason
                )
            if sending is not None:
                outgoing = self._letters(
                    [(doc, contact) for doc, contact in created if doc["_id"] in inserted],
                    {uid: user for uid, (user, _) in due.items()},
                )
                self._deliver(outgoing, stats, errors, sending)
        stats["processedUsers"] += len(due)
        stats["batchesProcessed"] += 1
        return TaskResult(task.task_id, task.kind, dict(stats), errors)

    def _letters(
        self, created: list[tuple[Document, Document]], senders: dict[Any, Document]
    ) -> list[Outgoing]:
        """The messages of invitations just created from these documents. One
        a letter cannot be made of (a malformed field) stays queued: the
        sending pass counts and logs it."""
        letters = Letters(defaults_of(self.settings))
        outgoing = []
        for invitation, contact in created:
            try:
                letter = letters.letter(
                    "invitation", invitation, senders[invitation["fromUserId"]], contact
                )
            except MalformedDocument:
                continue
            outgoing.append(Outgoing(invitation, contact, letter.recipient_email, letter))
        return outgoing

    def _counted_by_original(self, user_ids: list[Any]) -> set[Any]:
        """Users whose invitations for the month the Node.js service created
        (before the switch-over): it counted their cycle itself."""
        if self.switch_over is None or not user_ids:
            return set()
        return self.store.invitations.senders_invited_before(
            user_ids, str(self.month), self.switch_over
        )

    def _invitations_for(
        self,
        user: dict[str, Any],
        contacts: list[dict[str, Any]],
        now: datetime,
        stats: Counter[str],
    ) -> list[tuple[Document, Document]]:
        """(invitation to create, its contact) for each contact that can get one."""
        lifetime = timedelta(days=self.settings.invitation_expiry_days)
        docs, seen = [], set()
        for contact in contacts:
            reason = contact_skip_reason(contact)
            email = str(contact.get("email", "")).strip().lower()
            if reason is None and email in seen:
                reason = "duplicate"
            if reason is not None:
                stats["skippedContacts"] += 1
                stats["skipped" + reason[0].upper() + reason[1:]] += 1
                if reason == "malformed":
                    log.warning(
                        "skipped malformed contact %s of user %s", contact.get("_id"), user["_id"]
                    )
                continue
            seen.add(email)
            docs.append((monthly_invitation(user, contact, self.month, now, lifetime), contact))
        return docs

    def _insert(
        self, docs: list[Document], stats: Counter[str], errors: list[str]
    ) -> tuple[set[Any], set[Any]]:
        """Insert in bulk writes of SCHEDULER_INVITATION_BATCH_SIZE; returns the
        users with an invitation that could not be written (not complete),
        and the `_id` of each document inserted."""
        failed_owners: set[Any] = set()
        inserted: set[Any] = set()
        size = self.settings.invitation_batch_size
        for start in range(0, len(docs), size):
            chunk = docs[start : start + size]
            if not self.lease.holds(self.clock.now()):
                # Lost meanwhile: these users stay incomplete for the run that took over.
                stats["leaseLost"] = 1
                failed_owners |= {doc["fromUserId"] for doc in docs[start:]}
                break
            outcome = self.store.invitations.insert_new(chunk)
            stats["alreadyInvited"] += len(outcome.duplicates)
            stats["createdInvitations"] += (
                len(chunk) - len(outcome.duplicates) - len(outcome.errors)
            )
            for index, reason in outcome.errors.items():
                owner = chunk[index]["fromUserId"]
                stats["failedCreates"] += 1
                errors.append(f"create for user {owner}: {reason}")
                failed_owners.add(owner)
            refused = set(outcome.duplicates) | set(outcome.errors)
            inserted |= {doc["_id"] for index, doc in enumerate(chunk) if index not in refused}
        return failed_owners, inserted

    # -- sending ------------------------------------------------------------

    def send(self, task: Task, progress: Progress) -> TaskResult:
        stats: Counter[str] = Counter()
        errors: list[str] = []
        invitations = self.store.invitations.load_queued(list(task.items))
        senders = {
            u["_id"]: u for u in self.store.users.load({i.get("fromUserId") for i in invitations})
        }
        pairs = {(i.get("fromUserId"), str(i.get("toEmail", "")).lower()) for i in invitations}
        contacts = self.store.contacts.by_owner_and_email(pairs)
        letters = Letters(defaults_of(self.settings))
        outgoing = []
        for invitation in invitations:
            pair = (invitation.get("fromUserId"), str(invitation.get("toEmail", "")).lower())
            sender, contact = senders.get(pair[0]), contacts.get(pair)
            # Still allowed? The sender may have opted out, the contact unsubscribed
            # or bounced since the invitation was created; it then stays queued.
            if sender is None or not is_active_sender(sender):
                stats["heldSenderInactive"] += 1
                continue
            if contact is not None and contact_skip_reason(contact) is not None:
                stats["heldContactUnreachable"] += 1
                continue
            try:
                letter = letters.letter("invitation", invitation, sender, contact)
            except MalformedDocument as error:
                stats["malformedInvitations"] += 1
                log.warning("skipped: %s", error)
                continue
            outgoing.append(Outgoing(invitation, contact, letter.recipient_email, letter))
        self._deliver(outgoing, stats, errors, progress)
        stats["batchesProcessed"] += 1
        return TaskResult(task.task_id, task.kind, dict(stats), errors)

    def _deliver(
        self, outgoing: list[Outgoing], stats: Counter[str], errors: list[str], progress: Progress
    ) -> None:
        stats["totalInvitations"] += len(outgoing)
        counts = self.deliverer.deliver(outgoing, InvitationEffects(self.store), progress)
        stats["sentInvitations"] += counts.sent
        stats["bouncedInvitations"] += counts.bounced
        # A message not attempted (the run stopping, its lease lost, the mail
        # server down) stays queued for the next run: not a failed delivery,
        # so a stop does not read as an error rate.
        stats["failedInvitations"] += counts.failed
        stats["notAttempted"] += counts.not_attempted
        stats["alreadySent"] += counts.skipped
        stats["smtpDown"] += int(counts.server_down)
        stats["repairedDocuments"] += counts.repaired
        stats["failedWrites"] += counts.failed_writes
        errors += counts.errors


def monthly_invitation(
    user: dict[str, Any],
    contact: dict[str, Any],
    month: Month,
    now: datetime,
    lifetime: timedelta,
) -> dict[str, Any]:
    """The invitation a monthly run creates for this user's eligible contact."""
    preferences = subdocument(user, "preferences")
    custom = preferences.get("customMessage")
    return new_invitation(
        from_user_id=user["_id"],
        to_email=str(contact.get("email", "")),
        to_user_id=contact.get("contactUserId"),
        month=str(month),
        template=str(preferences.get("emailTemplate") or "friendly"),
        custom_message=custom[:500] if isinstance(custom, str) and custom.strip() else None,
        now=now,
        lifetime=lifetime,
    )


@dataclass(frozen=True)
class MonthlyWorkerFactory:
    """Picklable recipe for a worker: everything is built in the worker process."""

    settings: Settings
    clock: Clock
    month: Month
    run_id: str
    dry_run: bool
    rate_slot: Any  # shared by all workers (mailing.shared_rate_slot)
    lease: LeaseMirror  # the run's lease, as workers see it
    switch_over: datetime | None = None  # MonthlyWorker.switch_over

    def __call__(self) -> MonthlyWorker:
        store, transport, deliverer = worker_deliverer(
            self.settings, self.clock, self.run_id, self.rate_slot, self.lease
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
            self.lease,
            self.switch_over,
        )

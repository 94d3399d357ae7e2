"""What a worker does for reminders: decide, for each invitation of a batch,
whether its reminder goes out now, and send those through the outbox."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, time
from functools import cached_property
from typing import Any, ClassVar

from formafriend_scheduler.clock import Clock
from formafriend_scheduler.config import Settings
from formafriend_scheduler.eligibility import contact_skip_reason
from formafriend_scheduler.jobs.delivery import Deliverer, Outgoing
from formafriend_scheduler.jobs.letters import Letters, MalformedDocument
from formafriend_scheduler.jobs.mailing import BounceEffects, defaults_of, worker_deliverer
from formafriend_scheduler.lifecycle.lock import LeaseMirror
from formafriend_scheduler.lifecycle.pool import Progress, Task, TaskResult
from formafriend_scheduler.mail.compose import Kind
from formafriend_scheduler.mail.transports import Delivery, Transport
from formafriend_scheduler.reminder_rules import (
    REMINDABLE_STATUSES,
    ReminderType,
    days_left,
    parse_time_of_day,
    reminder_due,
    sender_allows,
    within_window,
)
from formafriend_scheduler.store import Store
from formafriend_scheduler.store.base import WriteReport

log = logging.getLogger(__name__)

REMIND = "remind"
LETTER_KIND: dict[str, Kind] = {"first": "reminder-first", "second": "reminder-second"}
REMINDER_OF_KIND = {kind: reminder for reminder, kind in LETTER_KIND.items()}


class ReminderEffects(BounceEffects):
    """A delivered reminder is pushed to the invitation's `reminders`."""

    bounce_from: ClassVar[list[str | None]] = list(REMINDABLE_STATUSES)

    def delivered(self, sent: list[tuple[Outgoing, Delivery]], now: datetime) -> WriteReport:
        return self._store.invitations.push_reminders(
            [(m.invitation, REMINDER_OF_KIND[m.letter.kind]) for m, _ in sent], now
        )

    def already_settled(self, settled: list[tuple[Outgoing, str]], now: datetime) -> WriteReport:
        # Sent by an earlier run that stopped before recording it: record, never resend.
        return self._store.invitations.push_reminders(
            [
                (m.invitation, REMINDER_OF_KIND[m.letter.kind])
                for m, state in settled
                if state == "sent"
            ],
            now,
        )


@dataclass(frozen=True)
class Window:
    """The local hours reminders may go out in (SCHEDULER_REMINDER_WINDOW_*),
    parsed once per worker, not per invitation."""

    start: time
    end: time


@dataclass
class ReminderWorker:
    settings: Settings
    clock: Clock
    only: ReminderType | None
    dry_run: bool
    store: Store
    transport: Transport
    deliverer: Deliverer

    def close(self) -> None:
        self.transport.close()
        self.store.close()

    @cached_property
    def window(self) -> Window:
        return Window(
            parse_time_of_day(self.settings.reminder_window_start),
            parse_time_of_day(self.settings.reminder_window_end),
        )

    def __call__(self, task: Task, progress: Progress) -> TaskResult:
        now = self.clock.now()
        stats: Counter[str] = Counter()
        invitations = self.store.invitations.load(list(task.items))
        senders = {
            u["_id"]: u for u in self.store.users.load({i.get("fromUserId") for i in invitations})
        }
        pairs = {(i.get("fromUserId"), str(i.get("toEmail", "")).lower()) for i in invitations}
        contacts = self.store.contacts.by_owner_and_email(pairs)
        outgoing: list[Outgoing] = []
        letters = Letters(defaults_of(self.settings))
        for invitation in invitations:
            stats["candidatesChecked"] += 1
            sender = senders.get(invitation.get("fromUserId"))
            contact = contacts.get(
                (invitation.get("fromUserId"), str(invitation.get("toEmail", "")).lower())
            )
            decision, skipped = self._decide(invitation, sender, contact, now, letters)
            if decision is None:
                stats[skipped] += 1
                continue
            try:
                letter = letters.letter(
                    LETTER_KIND[decision],
                    invitation,
                    sender,
                    contact,
                    days_left=days_left(invitation, now),
                )
            except MalformedDocument as error:
                stats["malformedInvitations"] += 1
                log.warning("skipped: %s", error)
                continue
            if self.dry_run:
                stats[f"{decision}RemindersToSend"] += 1
                continue
            outgoing.append(Outgoing(invitation, contact, letter.recipient_email, letter))

        counts = self.deliverer.deliver(outgoing, ReminderEffects(self.store))
        stats["firstRemindersSent"] += counts.sent_by_kind["reminder-first"]
        stats["secondRemindersSent"] += counts.sent_by_kind["reminder-second"]
        stats["failedReminders"] += counts.failed  # not attempted: pending (monthly_worker)
        stats["notAttempted"] += counts.not_attempted
        stats["bouncedReminders"] += counts.bounced
        stats["alreadySent"] += counts.skipped
        stats["smtpDown"] += int(counts.server_down)
        stats["repairedDocuments"] += counts.repaired
        stats["failedWrites"] += counts.failed_writes
        stats["batchesProcessed"] += 1
        return TaskResult(task.task_id, task.kind, dict(stats), counts.errors)

    def _decide(
        self,
        invitation: dict[str, Any],
        sender: dict[str, Any] | None,
        contact: dict[str, Any] | None,
        now: datetime,
        letters: Letters,
    ) -> tuple[ReminderType | None, str]:
        """The reminder to send now, or None and the stat that says why not
        (the sender's timezone as its letters have it: worked out once per
        sender of the batch)."""
        if invitation.get("status") not in REMINDABLE_STATUSES:
            return None, "notDue"  # answered or expired since the candidate was listed
        kind = reminder_due(
            invitation, now, self.settings.first_reminder_days, self.settings.second_reminder_days
        )
        if kind is None or (self.only is not None and kind != self.only):
            return None, "notDue"
        if sender is None or sender_allows(sender, kind) is not None:
            return None, "skippedPreference"
        if contact is None or contact_skip_reason(contact) is not None:
            return None, "skippedContact"
        local = now.astimezone(letters.facts(sender).timezone).time()
        if not within_window(local, self.window.start, self.window.end):
            return None, "outsideWindow"
        return kind, ""


@dataclass(frozen=True)
class ReminderWorkerFactory:
    settings: Settings
    clock: Clock
    run_id: str
    only: ReminderType | None
    dry_run: bool
    rate_slot: Any
    lease: LeaseMirror

    def __call__(self) -> ReminderWorker:
        store, transport, deliverer = worker_deliverer(
            self.settings, self.clock, self.run_id, self.rate_slot, self.lease
        )
        return ReminderWorker(
            self.settings, self.clock, self.only, self.dry_run, store, transport, deliverer
        )

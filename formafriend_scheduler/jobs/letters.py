"""From the app's documents to a Letter (shared by invitations and reminders)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from formafriend_scheduler.clock import to_utc
from formafriend_scheduler.eligibility import (
    Defaults,
    Month,
    plain_address,
    send_schedule,
    subdocument,
)
from formafriend_scheduler.mail.compose import DEFAULT_TONE, Kind, Letter
from formafriend_scheduler.store.invitations import effective_expiry


def display_name(user: dict[str, Any]) -> str:
    """`First Last` from the profile, else the username, else the e-mail's local part."""
    profile = subdocument(user, "profile")
    names = [profile.get(key) for key in ("firstName", "lastName")]
    full = " ".join(str(name).strip() for name in names if isinstance(name, str) and name.strip())
    if full:
        return full
    if isinstance(user.get("username"), str) and user["username"].strip():
        return str(user["username"]).strip()
    email = user.get("email")
    return str(email).split("@", 1)[0] if isinstance(email, str) else ""


class MalformedDocument(ValueError):
    """A document lacks what an e-mail needs; it is skipped and counted."""


@dataclass(frozen=True)
class SenderFacts:
    """What a letter takes from its sender, the same in all of the sender's letters."""

    name: str
    email: str | None  # Reply-To only when safe
    timezone: ZoneInfo
    preferences: dict[str, Any]


def sender_facts(sender: dict[str, Any], defaults: Defaults) -> SenderFacts:
    return SenderFacts(
        name=display_name(sender),
        email=plain_address(sender.get("email")),
        timezone=send_schedule(sender, defaults).zone,
        preferences=subdocument(sender, "preferences"),
    )


_NO_SENDER: dict[str, Any] = {}


class Letters:
    """Letters of one batch: each sender's part (name, address, timezone)
    worked out once, not per letter: a sender has about twenty letters a
    month (9.3-10.0 -> 6.7-7.0 µs per letter alone; in a monthly run of
    9,004 invitations on DocumentDB, in-process, 25 -> 18-20 µs)."""

    def __init__(self, defaults: Defaults) -> None:
        self._defaults = defaults
        # By the sender document's identity, which the entry keeps alive.
        self._senders: dict[int, tuple[dict[str, Any], SenderFacts]] = {}
        # A batch's letters are of one month or two: each parsed once (by its
        # text, which is all Month.parse reads).
        self._months: dict[str, Month] = {}

    def facts(self, sender: dict[str, Any]) -> SenderFacts:
        known = self._senders.get(id(sender))
        if known is None:
            known = self._senders[id(sender)] = (sender, sender_facts(sender, self._defaults))
        return known[1]

    def letter(
        self,
        kind: Kind,
        invitation: dict[str, Any],
        sender: dict[str, Any] | None,
        contact: dict[str, Any] | None,
        days_left: int | None = None,
    ) -> Letter:
        """The letter of `invitation` (MalformedDocument when it lacks what an
        e-mail needs)."""
        token, recipient = invitation.get("token"), invitation.get("toEmail")
        expires_at, month = effective_expiry(invitation), invitation.get("month")
        if not isinstance(token, str) or not token:
            raise MalformedDocument(f"invitation {invitation.get('_id')} has no token")
        recipient = plain_address(recipient)
        if recipient is None:
            raise MalformedDocument(f"invitation {invitation.get('_id')} has no valid toEmail")
        if not isinstance(expires_at, datetime):
            raise MalformedDocument(
                f"invitation {invitation.get('_id')} has no expiresAt or creation date"
            )
        parsed_month = self._months.get(str(month))
        if parsed_month is None:
            try:
                parsed_month = self._months[str(month)] = Month.parse(str(month))
            except ValueError:
                raise MalformedDocument(
                    f"invitation {invitation.get('_id')} has month {month!r}"
                ) from None
        facts = self.facts(sender if sender is not None else _NO_SENDER)
        contact = contact or {}
        metadata = subdocument(invitation, "metadata")
        preferences = facts.preferences
        tone = metadata.get("template") or preferences.get("emailTemplate") or DEFAULT_TONE
        custom = metadata.get("customMessage", preferences.get("customMessage"))
        return Letter(
            kind=kind,
            key=str(invitation["_id"]),
            tone=str(tone),
            month=parsed_month,
            token=token,
            expires_at=to_utc(expires_at),
            timezone=facts.timezone,
            sender_name=facts.name,
            sender_email=facts.email,
            recipient_email=recipient,
            recipient_first_name=_text(contact.get("firstName")),
            recipient_last_name=_text(contact.get("lastName")),
            custom_message=_text(custom),
            days_left=days_left,
        )


def letter_for(
    kind: Kind,
    invitation: dict[str, Any],
    sender: dict[str, Any] | None,
    contact: dict[str, Any] | None,
    defaults: Defaults,
    days_left: int | None = None,
) -> Letter:
    """One letter (Letters.letter), for a caller with a single one to write."""
    return Letters(defaults).letter(kind, invitation, sender, contact, days_left)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None

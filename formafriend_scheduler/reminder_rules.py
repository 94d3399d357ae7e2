"""Which reminder an invitation is due, and whether now is a decent hour.

Pure functions over the app's documents (data-model.md).
"""

from __future__ import annotations

import math
import re
from datetime import datetime, time, timedelta
from typing import Any, Literal

from formafriend_scheduler.clock import to_utc
from formafriend_scheduler.eligibility import subdocument
from formafriend_scheduler.store.invitations import effective_expiry

ReminderType = Literal["first", "second"]
REMINDABLE_STATUSES = ("sent", "opened", "started")
_TIME = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


def parse_time_of_day(text: str) -> time:
    match = _TIME.match(text.strip())
    if not match:
        raise ValueError(f"{text!r} is not a time HH:MM")
    return time(int(match.group(1)), int(match.group(2)))


def reminder_types_sent(invitation: dict[str, Any]) -> set[str]:
    reminders = invitation.get("reminders")
    if not isinstance(reminders, list):
        return set()
    return {str(r.get("type")) for r in reminders if isinstance(r, dict)}


def reminder_due(
    invitation: dict[str, Any], now: datetime, first_days: int, second_days: int
) -> ReminderType | None:
    """The one reminder due now, if any.

    From J+`first_days` the first; from J+`second_days` the second, which is
    never followed by another. An invitation that reaches J+`second_days`
    without its first reminder gets only the second: never two in one run.
    """
    sent_at = subdocument(invitation, "tracking").get("sentAt")
    if not isinstance(sent_at, datetime):
        return None
    age = now - to_utc(sent_at)
    done = reminder_types_sent(invitation)
    if "second" in done:
        return None
    if age >= timedelta(days=second_days):
        return "second"
    if age >= timedelta(days=first_days) and "first" not in done:
        return "first"
    return None


def days_left(invitation: dict[str, Any], now: datetime) -> int:
    """Whole days (rounded up) before the invitation expires; 0 once it has passed."""
    expires_at = effective_expiry(invitation)
    if expires_at is None:
        return 0
    seconds = (to_utc(expires_at) - now).total_seconds()
    return max(0, math.ceil(seconds / 86400))


def within_window(local: time, start: time, end: time) -> bool:
    """`start` <= local < `end`; a window whose end is before its start spans midnight."""
    if start <= end:
        return start <= local < end
    return local >= start or local < end


def sender_allows(sender: dict[str, Any], kind: ReminderType) -> str | None:
    """Why the sender's settings forbid this reminder, or None when they allow it."""
    metadata = subdocument(sender, "metadata")
    preferences = subdocument(sender, "preferences")
    if metadata.get("isActive", True) is False:
        return "sender inactive"
    if preferences.get("optedOut") is True:
        return "sender opted out"
    settings = subdocument(preferences, "reminderSettings")
    setting = "firstReminder" if kind == "first" else "secondReminder"
    if settings.get(setting, True) is False:
        return f"{setting} off"
    channel = settings.get("reminderChannel", "email")
    if channel != "email":
        return f"reminders by {channel}"  # the scheduler only delivers e-mail
    return None

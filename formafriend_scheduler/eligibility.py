"""Who is due for the monthly cycle, and which contacts can be invited.

Pure functions over the app's documents (data-model.md), so every rule is
tested without a database. A missing field means the app's default; an
invalid one falls back to the scheduler's default and is reported.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from formafriend_scheduler.clock import to_utc

_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
_TIME = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
# The earliest and latest UTC offsets in use: a send moment in month M lies
# between M-01 00:00 at UTC+14 and the last day at UTC-12.
MAX_UTC_OFFSET = timedelta(hours=14)

FRENCH_MONTHS = (
    "janvier", "février", "mars", "avril", "mai", "juin",
    "juillet", "août", "septembre", "octobre", "novembre", "décembre",
)  # fmt: skip


@dataclass(frozen=True, order=True)
class Month:
    year: int
    month: int

    @classmethod
    def parse(cls, text: str) -> Month:
        match = _MONTH.match(text.strip())
        if not match:
            raise ValueError(f"{text!r} is not a month in the form YYYY-MM")
        return cls(int(match.group(1)), int(match.group(2)))

    @classmethod
    def containing(cls, moment: datetime, zone: ZoneInfo) -> Month:
        local = moment.astimezone(zone)
        return cls(local.year, local.month)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    @property
    def label(self) -> str:
        """French, as the app writes it: `janvier 2027`."""
        return f"{FRENCH_MONTHS[self.month - 1]} {self.year}"

    def next(self) -> Month:
        return Month(self.year + self.month // 12, self.month % 12 + 1)


@dataclass(frozen=True)
class SendSchedule:
    """A user's own send day, time and timezone, after defaults and fallbacks."""

    day: int
    hour: int
    minute: int
    zone: ZoneInfo
    problems: tuple[str, ...] = ()

    def moment(self, month: Month) -> datetime:
        """The user's send moment in `month`, in UTC.

        zoneinfo resolves a wall time skipped by a spring-forward gap with the
        offset before the gap (02:30 becomes 03:30 summer time) and a repeated
        one with its first occurrence, so each user has exactly one moment per
        month: never skipped, never doubled.
        """
        local = datetime(
            month.year, month.month, self.day, self.hour, self.minute, tzinfo=self.zone
        )
        return local.astimezone(UTC)


@dataclass(frozen=True)
class Defaults:
    day: int
    hour: int
    timezone: str


def send_schedule(user: dict[str, Any], defaults: Defaults) -> SendSchedule:
    preferences = subdocument(user, "preferences")
    problems: list[str] = []

    day = defaults.day
    raw_day = preferences.get("sendDay")
    if raw_day is not None:
        if _is_whole_number(raw_day) and 1 <= int(raw_day) <= 28:
            day = int(raw_day)
        else:
            problems.append(f"preferences.sendDay={raw_day!r} is not a day 1-28")

    hour, minute = defaults.hour, 0
    raw_time = preferences.get("sendTime")
    if raw_time is not None:
        match = _TIME.match(raw_time) if isinstance(raw_time, str) else None
        if match:
            hour, minute = int(match.group(1)), int(match.group(2))
        else:
            problems.append(f"preferences.sendTime={raw_time!r} is not a time HH:MM")

    zone = ZoneInfo(defaults.timezone)
    raw_zone = preferences.get("timezone")
    if raw_zone is not None:
        parsed = _zone(raw_zone)
        if parsed is None:
            problems.append(f"preferences.timezone={raw_zone!r} is not an IANA timezone")
        else:
            zone = parsed

    return SendSchedule(day, hour, minute, zone, tuple(problems))


def _zone(value: Any) -> ZoneInfo | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _is_whole_number(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and value.is_integer())


def subdocument(doc: dict[str, Any], name: str) -> dict[str, Any]:
    """`doc[name]` when it is a document, else empty (missing or malformed)."""
    value = doc.get(name)
    return value if isinstance(value, dict) else {}


def is_active_sender(user: dict[str, Any]) -> bool:
    """`metadata.isActive` true (missing: true) and `preferences.optedOut` not true."""
    return (
        subdocument(user, "metadata").get("isActive", True) is not False
        and subdocument(user, "preferences").get("optedOut") is not True
    )


def cycle_update(
    user: dict[str, Any],
    moment: datetime,
    next_moment: datetime,
    now: datetime,
    *,
    counted_by_original: bool = False,
) -> dict[str, Any]:
    """What a newly completed cycle writes on the user document.

    `statistics.joinedCycles + 1`, unless the Node.js service already counted
    this month: it had created the user's invitations for the month before
    this scheduler took over (`counted_by_original`, from the invitations'
    `createdAt`), or a `metadata.lastMonthlyJobRun` lies in this month's cycle
    (the original sets it, Mongoose drops it: only a database written without
    Mongoose has it). `metadata.lastMonthlyJobRun`, moved forward only and not
    by a backfill whose date would fall in a later month's cycle.
    """
    last = subdocument(user, "metadata").get("lastMonthlyJobRun")
    counted = counted_by_original or (
        isinstance(last, datetime) and moment <= to_utc(last) < next_moment
    )
    update: dict[str, Any] = {"$set": {"updatedAt": now}}
    if not counted:
        update["$inc"] = {"statistics.joinedCycles": 1}
    if now < next_moment:
        update["$max"] = {"metadata.lastMonthlyJobRun": now}
    return update


@dataclass(frozen=True)
class Due:
    due: bool
    moment: datetime
    next_moment: datetime
    problems: tuple[str, ...]


def due_for(user: dict[str, Any], month: Month, now: datetime, defaults: Defaults) -> Due:
    """An active sender whose own moment for `month` has passed. Whether the
    cycle already ran is the scheduler's marker's to say (store.cycles)."""
    schedule = send_schedule(user, defaults)
    moment = schedule.moment(month)
    due = is_active_sender(user) and moment <= now
    return Due(due, moment, schedule.moment(month.next()), schedule.problems)


def latest_send_day(month: Month, now: datetime) -> int | None:
    """The largest sendDay that can already be due in `month` at `now`, anywhere
    on Earth; None when every day can be (a past month) and 0 when none can."""
    earliest_local = now + MAX_UTC_OFFSET  # the local time at UTC+14
    current = Month(earliest_local.year, earliest_local.month)
    if month < current:
        return None
    if month > current:
        return 0
    return earliest_local.day


# A contact "can receive an invitation" (data-model.md) ----------------------

CONTACT_STATUSES = ("active", "pending")
BLOCKING_EMAIL_STATUSES = ("bounced_permanent", "complained", "unsubscribed")
MAX_BOUNCES = 5
# A plain ASCII addr-spec: no whitespace, control characters, or characters
# that would end or extend an address header (<>,;"()[]\).
_ADDRESS = re.compile(r"^[^\s<>,;\"()\[\]\\@]+@[^\s<>,;\"()\[\]\\@]+\.[A-Za-z0-9-]{2,}$")


def plain_address(value: Any) -> str | None:
    """The address, trimmed and lower-cased, when it is a plain addr-spec; else None.

    Addresses are untrusted input that ends up in headers: anything else is
    refused here rather than escaped later.
    """
    if not isinstance(value, str):
        return None
    address = value.strip().lower()
    if not address.isascii() or not address.isprintable() or not _ADDRESS.match(address):
        return None
    return address


def contact_skip_reason(contact: dict[str, Any]) -> str | None:
    """Why a contact cannot be invited, or None when it can.

    Missing fields take the app's defaults: status pending, emailStatus
    active, bounceCount 0, optedOut false, isActive true.
    """
    if plain_address(contact.get("email")) is None:
        return "malformed"
    if contact.get("status", "pending") not in CONTACT_STATUSES:
        return "status"
    if contact.get("optedOut") is True:
        return "optedOut"
    if contact.get("isActive", True) is False:
        return "inactive"
    if contact.get("emailStatus", "active") in BLOCKING_EMAIL_STATUSES:
        return "emailStatus"
    bounces = contact.get("bounceCount", 0)
    if (
        isinstance(bounces, int | float)
        and not isinstance(bounces, bool)
        and bounces >= MAX_BOUNCES
    ):
        return "bounces"
    return None

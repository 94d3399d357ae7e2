"""Which reminder is due, quiet hours, and the sender's settings: the pure rules."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest

from formafriend_scheduler.reminder_rules import (
    days_left,
    parse_time_of_day,
    reminder_due,
    sender_allows,
    within_window,
)

SENT = datetime(2027, 1, 5, 17, 0, tzinfo=UTC)
DAY = timedelta(days=1)
MINUTE = timedelta(minutes=1)


def invitation(*types: str) -> dict[str, Any]:
    return {
        "tracking": {"sentAt": SENT},
        "reminders": [{"type": t, "sentAt": SENT, "opened": False} for t in types],
    }


def due(doc: dict[str, Any], age: timedelta) -> str | None:
    return reminder_due(doc, SENT + age, first_days=3, second_days=7)


def test_the_first_reminder_is_due_from_j_plus_3_to_the_minute() -> None:
    assert due(invitation(), 3 * DAY - MINUTE) is None
    assert due(invitation(), 3 * DAY + MINUTE) == "first"


def test_after_the_first_nothing_until_j_plus_7_then_the_second() -> None:
    assert due(invitation("first"), 5 * DAY) is None
    assert due(invitation("first"), 7 * DAY - MINUTE) is None
    assert due(invitation("first"), 7 * DAY + MINUTE) == "second"


def test_j_plus_7_without_a_first_gets_only_the_second() -> None:
    assert due(invitation(), 8 * DAY) == "second"


def test_never_a_third() -> None:
    assert due(invitation("first", "second"), 20 * DAY) is None
    assert due(invitation("second"), 20 * DAY) is None


def test_without_a_sent_date_no_reminder() -> None:
    assert reminder_due({"reminders": []}, SENT + 9 * DAY, 3, 7) is None
    assert reminder_due({"tracking": {"sentAt": "yesterday"}}, SENT + 9 * DAY, 3, 7) is None
    assert (
        reminder_due({"tracking": {"sentAt": SENT}, "reminders": "oops"}, SENT + 4 * DAY, 3, 7)
        == "first"
    )


def test_days_left_round_up() -> None:
    expires = {"expiresAt": SENT + 60 * DAY}
    assert days_left(expires, SENT + 3 * DAY) == 57
    assert days_left(expires, SENT + 59 * DAY + MINUTE) == 1
    assert days_left(expires, SENT + 61 * DAY) == 0


def test_without_expires_at_the_apps_default_of_creation_plus_60_days_applies() -> None:
    assert days_left({"createdAt": SENT}, SENT + 3 * DAY) == 57
    assert days_left({"tracking": {"createdAt": SENT}}, SENT + 3 * DAY) == 57
    assert days_left({"expiresAt": "soon", "createdAt": SENT}, SENT) == 0  # malformed


@pytest.mark.parametrize(
    ("local", "start", "end", "inside"),
    [
        ("09:00", "09:00", "20:00", True),
        ("08:59", "09:00", "20:00", False),
        ("19:59", "09:00", "20:00", True),
        ("20:00", "09:00", "20:00", False),
        ("23:30", "22:00", "06:00", True),  # a window across midnight
        ("05:00", "22:00", "06:00", True),
        ("12:00", "22:00", "06:00", False),
    ],
)
def test_quiet_hours(local: str, start: str, end: str, inside: bool) -> None:
    window = (parse_time_of_day(start), parse_time_of_day(end))
    assert within_window(parse_time_of_day(local), *window) is inside


def test_time_of_day_parsing() -> None:
    assert parse_time_of_day("07:05") == time(7, 5)
    with pytest.raises(ValueError):
        parse_time_of_day("7h")


@pytest.mark.parametrize(
    ("sender", "kind", "reason"),
    [
        ({}, "first", None),  # every setting missing: the app's defaults allow both
        (
            {"preferences": {"reminderSettings": {"firstReminder": False}}},
            "first",
            "firstReminder off",
        ),
        ({"preferences": {"reminderSettings": {"firstReminder": False}}}, "second", None),
        (
            {"preferences": {"reminderSettings": {"secondReminder": False}}},
            "second",
            "secondReminder off",
        ),
        (
            {"preferences": {"reminderSettings": {"reminderChannel": "sms"}}},
            "first",
            "reminders by sms",
        ),
        ({"metadata": {"isActive": False}}, "first", "sender inactive"),
        ({"preferences": {"optedOut": True}}, "second", "sender opted out"),
    ],
)
def test_the_senders_settings(sender: dict[str, Any], kind: str, reason: str | None) -> None:
    assert sender_allows(sender, kind) == reason  # type: ignore[arg-type]

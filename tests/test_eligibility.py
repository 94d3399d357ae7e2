"""Who is due, when, and which contacts can be invited: the pure rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from formafriend_scheduler.eligibility import (
    Defaults,
    Month,
    contact_skip_reason,
    cycle_update,
    due_for,
    latest_send_day,
    plain_address,
    send_schedule,
)

DEFAULTS = Defaults(day=5, hour=18, timezone="Europe/Paris")
JANUARY = Month(2027, 1)
MINUTE = timedelta(minutes=1)


def user(**preferences: Any) -> dict[str, Any]:
    return {"_id": 1, "preferences": preferences}


def test_a_user_without_preferences_goes_out_on_the_5th_at_18_paris() -> None:
    moment = send_schedule({"_id": 1}, DEFAULTS).moment(JANUARY)
    assert moment == datetime(2027, 1, 5, 17, 0, tzinfo=UTC)  # 18:00 CET


def test_own_day_time_and_timezone_are_honoured() -> None:
    schedule = send_schedule(
        user(sendDay=12, sendTime="07:30", timezone="America/New_York"), DEFAULTS
    )
    assert schedule.moment(JANUARY) == datetime(2027, 1, 12, 12, 30, tzinfo=UTC)
    assert schedule.problems == ()


def test_summer_time_moves_the_utc_moment() -> None:
    schedule = send_schedule(user(), DEFAULTS)
    assert schedule.moment(Month(2027, 7)) == datetime(2027, 7, 5, 16, 0, tzinfo=UTC)  # CEST


@pytest.mark.parametrize(
    ("preferences", "problem"),
    [
        ({"sendDay": 31}, "sendDay=31"),
        ({"sendDay": "5"}, "sendDay='5'"),
        ({"sendDay": True}, "sendDay=True"),
        ({"sendTime": "25:00"}, "sendTime='25:00'"),
        ({"sendTime": 1800}, "sendTime=1800"),
        ({"timezone": "Mars/Olympus"}, "timezone='Mars/Olympus'"),
        ({"timezone": ""}, "timezone=''"),
    ],
)
def test_an_invalid_preference_falls_back_to_the_default_and_is_reported(
    preferences: dict[str, Any], problem: str
) -> None:
    schedule = send_schedule(user(**preferences), DEFAULTS)
    assert schedule.moment(JANUARY) == datetime(2027, 1, 5, 17, 0, tzinfo=UTC)
    assert len(schedule.problems) == 1 and problem in schedule.problems[0]


def test_a_whole_float_day_is_accepted() -> None:
    assert send_schedule(user(sendDay=12.0), DEFAULTS).day == 12


def test_a_wall_time_skipped_by_spring_forward_still_has_one_moment() -> None:
    # 2027-03-28 02:30 does not exist in Paris (clocks jump 02:00 -> 03:00).
    moment = send_schedule(user(sendDay=28, sendTime="02:30"), DEFAULTS).moment(Month(2027, 3))
    assert moment == datetime(2027, 3, 28, 1, 30, tzinfo=UTC)  # 03:30 CEST
    just_before = moment - timedelta(minutes=1)
    paris_user = user(sendDay=28, sendTime="02:30")
    assert not due_for(paris_user, Month(2027, 3), just_before, DEFAULTS).due
    assert due_for(paris_user, Month(2027, 3), moment, DEFAULTS).due


def test_a_wall_time_repeated_by_fall_back_is_due_from_its_first_occurrence() -> None:
    # 2027-11-07 01:30 happens twice in New York (clocks go back 02:00 -> 01:00):
    # the moment is the first one, a single instant; the cycle marker then
    # keeps the second 01:30 from starting the cycle again (tests/jobs).
    new_yorker = user(sendDay=7, sendTime="01:30", timezone="America/New_York")
    november = Month(2027, 11)
    moment = send_schedule(new_yorker, DEFAULTS).moment(november)
    assert moment == datetime(2027, 11, 7, 5, 30, tzinfo=UTC)  # the first 01:30, EDT
    assert not due_for(new_yorker, november, moment - MINUTE, DEFAULTS).due
    assert due_for(new_yorker, november, moment, DEFAULTS).due


def test_due_needs_the_moment_passed_an_active_sender_and_no_run_yet() -> None:
    at_moment = datetime(2027, 1, 5, 17, 0, tzinfo=UTC)
    assert not due_for({}, JANUARY, at_moment - timedelta(seconds=1), DEFAULTS).due
    assert due_for({}, JANUARY, at_moment, DEFAULTS).due
    assert not due_for({"metadata": {"isActive": False}}, JANUARY, at_moment, DEFAULTS).due
    assert not due_for({"preferences": {"optedOut": True}}, JANUARY, at_moment, DEFAULTS).due
    assert due_for({"preferences": {"optedOut": False}}, JANUARY, at_moment, DEFAULTS).due


def test_a_completed_cycle_counts_once_and_never_moves_the_last_run_back() -> None:
    moment = datetime(2027, 1, 5, 17, 0, tzinfo=UTC)
    next_moment = datetime(2027, 2, 5, 17, 0, tzinfo=UTC)
    now = moment + timedelta(hours=1)
    fresh = cycle_update({}, moment, next_moment, now)
    assert fresh == {
        "$set": {"updatedAt": now},
        "$inc": {"statistics.joinedCycles": 1},
        "$max": {"metadata.lastMonthlyJobRun": now},
    }
    # The original scheduler already ran this month's cycle: not counted twice.
    served = {"metadata": {"lastMonthlyJobRun": moment + timedelta(minutes=5)}}
    assert "$inc" not in cycle_update(served, moment, next_moment, now)
    # A backfill of January on 10 February leaves lastMonthlyJobRun alone, or
    # February's own cycle would look done.
    backfill = cycle_update({}, moment, next_moment, datetime(2027, 2, 10, tzinfo=UTC))
    assert "$max" not in backfill and backfill["$inc"] == {"statistics.joinedCycles": 1}


def test_users_across_timezones_become_due_at_their_own_moment() -> None:
    auckland = user(timezone="Pacific/Auckland")  # 18:00 NZDT = 05:00 UTC
    los_angeles = user(timezone="America/Los_Angeles")  # 18:00 PST = 02:00 UTC next day
    at = datetime(2027, 1, 5, 6, 0, tzinfo=UTC)
    assert due_for(auckland, JANUARY, at, DEFAULTS).due
    assert not due_for(los_angeles, JANUARY, at, DEFAULTS).due
    assert due_for(los_angeles, JANUARY, datetime(2027, 1, 6, 2, 0, tzinfo=UTC), DEFAULTS).due


def test_latest_send_day_bounds_the_candidate_query() -> None:
    now = datetime(2027, 1, 4, 11, 0, tzinfo=UTC)  # already the 5th at UTC+14
    assert latest_send_day(JANUARY, now) == 5
    assert latest_send_day(Month(2026, 12), now) is None  # a past month: any day
    assert latest_send_day(Month(2027, 2), now) == 0  # a future month: none


def test_months_parse_and_read_in_french() -> None:
    assert Month.parse("2027-01") == JANUARY
    assert JANUARY.label == "janvier 2027"
    assert Month(2027, 12).next() == Month(2028, 1)
    assert (
        Month.containing(datetime(2026, 12, 31, 23, 30, tzinfo=UTC), ZoneInfo("Europe/Paris"))
        == JANUARY
    )
    for bad in ("2027-13", "2027-1", "27-01", "janvier"):
        with pytest.raises(ValueError):
            Month.parse(bad)


@pytest.mark.parametrize(
    ("contact", "reason"),
    [
        ({"email": "a@x.org"}, None),  # every optional field missing: the defaults
        ({"email": "a@x.org", "status": "active"}, None),
        ({"email": "a@x.org", "status": "pending", "bounceCount": 4}, None),
        ({"email": "a@x.org", "status": "opted_out"}, "status"),
        ({"email": "a@x.org", "status": "bounced"}, "status"),
        ({"email": "a@x.org", "status": "blocked"}, "status"),
        ({"email": "a@x.org", "optedOut": True}, "optedOut"),
        ({"email": "a@x.org", "isActive": False}, "inactive"),
        ({"email": "a@x.org", "emailStatus": "bounced_permanent"}, "emailStatus"),
        ({"email": "a@x.org", "emailStatus": "complained"}, "emailStatus"),
        ({"email": "a@x.org", "emailStatus": "unsubscribed"}, "emailStatus"),
        ({"email": "a@x.org", "emailStatus": "bounced_temporary"}, None),
        ({"email": "a@x.org", "bounceCount": 5}, "bounces"),
        ({}, "malformed"),
        ({"email": "not-an-address"}, "malformed"),
        ({"email": 42}, "malformed"),
        ({"email": "a@x.org\r\nBcc: victim@evil.example"}, "malformed"),
    ],
)
def test_which_contacts_can_receive_an_invitation(
    contact: dict[str, Any], reason: str | None
) -> None:
    assert contact_skip_reason(contact) == reason


@pytest.mark.parametrize(
    ("value", "address"),
    [
        ("Bob@Example.ORG ", "bob@example.org"),
        ("first.last+tag@sub.example.co.uk", "first.last+tag@sub.example.co.uk"),
        ("a@x.org\r\nBcc: v@evil.example", None),
        ("Bob <bob@x.org>", None),
        ("a,b@x.org", None),
        ('"a"@x.org', None),
        ("a@x", None),
        ("é@x.org", None),
        (None, None),
    ],
)
def test_only_plain_addresses_are_accepted(value: Any, address: str | None) -> None:
    assert plain_address(value) == address

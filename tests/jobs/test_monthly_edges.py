"""monthly-invitations at the edges: a server refusing everyone, backfills,
changed send days, missing indexes and fields, hostile addresses."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from formafriend_scheduler.clock import FrozenClock
from formafriend_scheduler.eligibility import Month
from formafriend_scheduler.errors import ExitCode
from formafriend_scheduler.store import Store, connect
from tests import factories
from tests.jobs.monthly_helpers import (
    JANUARY,
    SEND_MOMENT,
    add_contacts,
    add_user,
    at_send_moment,
    invitations_of,
    monthly_settings,
    run_monthly,
)
from tests.smtpserver import SmtpServer


@pytest.fixture
def setup(mongodb_uri: str, smtp_server: SmtpServer) -> tuple[Any, Store]:
    settings = monthly_settings(mongodb_uri, smtp_server.url)
    return settings, connect(settings)


def test_a_server_refusing_every_recipient_bounces_nobody(
    setup: tuple[Any, Store], smtp_server: SmtpServer
) -> None:
    settings, store = setup
    alice = add_user(store)
    emails = [f"c{i}@x.org" for i in range(6)]
    add_contacts(store, alice, *emails)
    for email in emails:
        smtp_server.refuse_always(email, "554 5.7.1 Relay access denied")

    result = run_monthly(settings, store, at_send_moment())

    assert result.stats["bouncedInvitations"] == 0
    assert result.exit_code in (ExitCode.FAILED, ExitCode.PARTIAL)
    assert store.db["contacts"].count_documents({"emailStatus": "bounced_permanent"}) == 0
    assert store.db["invitations"].count_documents({"status": "queued"}) == 6


def test_the_same_refusal_for_a_whole_chunk_is_the_server_not_the_mailboxes(
    setup: tuple[Any, Store], smtp_server: SmtpServer
) -> None:
    settings, store = setup
    alice = add_user(store)
    emails = [f"c{i}@x.org" for i in range(5)]
    add_contacts(store, alice, *emails)
    for email in emails:  # no enhanced code: looks like "no such user", for everyone
        smtp_server.refuse_always(email, "550 Relaying denied")

    result = run_monthly(settings, store, at_send_moment())

    assert result.stats["bouncedInvitations"] == 0
    assert store.db["contacts"].count_documents({"emailStatus": "bounced_permanent"}) == 0


def test_policy_refusals_of_some_recipients_never_stop_the_others(
    setup: tuple[Any, Store], smtp_server: SmtpServer
) -> None:
    """Given three recipients in a row refused by policy (554 5.7.1), everyone
    else still gets their invitation; the three stay queued for the next run."""
    settings, store = setup
    alice = add_user(store)
    emails = [f"c{i:02d}@x.org" for i in range(30)]
    add_contacts(store, alice, *emails)
    for email in emails[:3]:
        smtp_server.refuse_always(email, "554 5.7.1 Message refused by policy")

    result = run_monthly(settings, store, at_send_moment())

    assert (result.stats["sentInvitations"], result.stats["failedInvitations"]) == (27, 3)
    assert result.stats["bouncedInvitations"] == 0
    assert set(smtp_server.recipients()) == set(emails[3:])
    assert (result.status, result.exit_code) == ("partial", ExitCode.PARTIAL)  # 10 % failed
    assert "unavailable" not in result.message
    assert store.db["invitations"].count_documents({"status": "queued"}) == 3


def test_a_message_that_failed_is_tried_once_per_run_and_sent_by_the_next(
    setup: tuple[Any, Store], smtp_server: SmtpServer
) -> None:
    """The first pass sends what it creates; its sending pass leaves alone
    what that pass already tried, so a failure counts once; the next run
    sends it."""
    settings, store = setup
    alice = add_user(store)
    add_contacts(store, alice, "a@x.org", "b@x.org")
    smtp_server.refuse_always("b@x.org", "554 5.7.1 Message refused by policy")

    first = run_monthly(settings, store, at_send_moment())
    smtp_server.recorder.always.clear()
    second = run_monthly(settings, store, FrozenClock(SEND_MOMENT + timedelta(hours=1)))

    assert (first.stats["sentInvitations"], first.stats["failedInvitations"]) == (1, 1)
    assert (second.stats["sentInvitations"], second.stats["failedInvitations"]) == (1, 0)
    assert smtp_server.recipients() == {"a@x.org": 1, "b@x.org": 1}
    assert store.db["invitations"].count_documents({"status": "sent"}) == 2


def test_a_backfilled_month_does_not_hide_the_next_one(
    setup: tuple[Any, Store], smtp_server: SmtpServer
) -> None:
    settings, store = setup
    alice = add_user(store)
    add_contacts(store, alice, "a@x.org")
    clock = FrozenClock(datetime(2027, 2, 10, 12, 0, tzinfo=UTC))

    january = run_monthly(settings, store, clock, month=JANUARY)
    february = run_monthly(settings, store, clock, month=Month(2027, 2))

    assert january.stats["sentInvitations"] == february.stats["sentInvitations"] == 1
    assert {doc["month"] for doc in store.db["invitations"].find()} == {"2027-01", "2027-02"}
    user = store.db["users"].find_one({"_id": alice["_id"]})
    assert user is not None and user["statistics"]["joinedCycles"] == 2


def test_moving_the_send_day_later_in_the_month_does_not_start_a_second_cycle(
    setup: tuple[Any, Store], smtp_server: SmtpServer
) -> None:
    settings, store = setup
    alice = add_user(store, preferences={"sendDay": 5})
    add_contacts(store, alice, "a@x.org")
    clock = at_send_moment()
    run_monthly(settings, store, clock)
    store.db["users"].update_one({"_id": alice["_id"]}, {"$set": {"preferences.sendDay": 20}})
    store.db["contacts"].insert_one(factories.contact(alice["_id"], "new@x.org"))
    clock.set(datetime(2027, 1, 20, 18, 0, tzinfo=UTC))

    again = run_monthly(settings, store, clock)

    assert again.stats["totalUsers"] == 0
    user = store.db["users"].find_one({"_id": alice["_id"]})
    assert user is not None and user["statistics"]["joinedCycles"] == 1


def test_a_user_the_original_scheduler_already_counted_is_not_counted_twice(
    setup: tuple[Any, Store], smtp_server: SmtpServer
) -> None:
    settings, store = setup
    clock = at_send_moment()
    alice = add_user(
        store,
        metadata={"lastMonthlyJobRun": clock.now() + timedelta(minutes=1)},
        statistics={"joinedCycles": 7},
    )
    add_contacts(store, alice, "a@x.org")
    clock.advance(timedelta(minutes=30))

    run_monthly(settings, store, clock)

    user = store.db["users"].find_one({"_id": alice["_id"]})
    assert user is not None and user["statistics"]["joinedCycles"] == 7


def test_a_switch_over_mid_month_counts_each_users_cycle_once(
    setup: tuple[Any, Store], smtp_server: SmtpServer
) -> None:
    # The Node.js service ran on the 5th for Alice (it created her January
    # invitations, one already opened, and counted her cycle: 3 -> 4) and was
    # stopped before reaching Bob. Mongoose kept no lastMonthlyJobRun.
    settings, store = setup
    clock = at_send_moment()
    alice = add_user(store, statistics={"joinedCycles": 4})
    bob = add_user(store, statistics={"joinedCycles": 4})
    add_contacts(store, alice, "a1@x.org", "a2@x.org", "a3@x.org")
    add_contacts(store, bob, "b1@x.org", "b2@x.org")
    created_by_node = clock.now() + timedelta(minutes=2)
    expires = created_by_node + timedelta(days=60)
    store.db["invitations"].insert_many(
        [
            factories.invitation(alice["_id"], "a1@x.org", "2027-01", expires_at=expires,
                                 status="sent", createdAt=created_by_node),
            factories.invitation(alice["_id"], "a2@x.org", "2027-01", expires_at=expires,
                                 status="opened", createdAt=created_by_node),
        ]
    )  # fmt: skip
    clock.set(datetime(2027, 1, 12, 9, 0, tzinfo=UTC))  # the scheduler takes over

    first = run_monthly(settings, store, clock)
    clock.advance(timedelta(hours=1))
    again = run_monthly(settings, store, clock)

    joined = {u["_id"]: u["statistics"]["joinedCycles"] for u in store.db["users"].find()}
    assert joined == {alice["_id"]: 4, bob["_id"]: 5}
    assert first.stats["alreadyInvited"] == 2 and first.stats["createdInvitations"] == 3
    assert sorted(smtp_server.recipients()) == ["a3@x.org", "b1@x.org", "b2@x.org"]
    assert invitations_of(store, alice)["a2@x.org"]["status"] == "opened"  # never backwards
    assert again.stats["processedUsers"] == 0

    # February is the scheduler's alone: both counted.
    clock.set(datetime(2027, 2, 5, 17, 0, tzinfo=UTC))
    run_monthly(settings, store, clock, month=Month(2027, 2))
    joined = {u["_id"]: u["statistics"]["joinedCycles"] for u in store.db["users"].find()}
    assert joined == {alice["_id"]: 5, bob["_id"]: 6}


def test_invitations_left_by_this_schedulers_own_crashed_run_still_count_the_cycle(
    setup: tuple[Any, Store], smtp_server: SmtpServer
) -> None:
    # A run inserted Alice's invitations and died before her cycle marker:
    # they were created after the switch-over, so they are this scheduler's.
    settings, store = setup
    clock = at_send_moment()
    store.cycles.switch_over(clock.now(), record=True)
    alice = add_user(store, statistics={"joinedCycles": 2})
    add_contacts(store, alice, "a1@x.org", "a2@x.org")
    clock.advance(timedelta(minutes=5))
    store.db["invitations"].insert_one(
        factories.invitation(alice["_id"], "a1@x.org", "2027-01",
                             expires_at=clock.now() + timedelta(days=60), status="queued",
                             createdAt=clock.now())
    )  # fmt: skip
    clock.advance(timedelta(minutes=5))

    run_monthly(settings, store, clock)

    user = store.db["users"].find_one({"_id": alice["_id"]})
    assert user is not None and user["statistics"]["joinedCycles"] == 3
    assert sorted(smtp_server.recipients()) == ["a1@x.org", "a2@x.org"]


def test_the_switch_over_is_recorded_once_and_a_dry_run_records_nothing(
    setup: tuple[Any, Store], smtp_server: SmtpServer
) -> None:
    settings, store = setup
    add_contacts(store, add_user(store), "a@x.org")
    first = datetime(2027, 1, 12, 9, 0, tzinfo=UTC)

    run_monthly(settings, store, FrozenClock(first), dry_run=True)
    assert store.db["scheduler_cycles"].count_documents({}) == 0
    run_monthly(settings, store, FrozenClock(first))
    run_monthly(settings, store, FrozenClock(first + timedelta(days=40)), month=Month(2027, 2))

    switch = store.db["scheduler_cycles"].find_one({"_id": "switch-over"})
    assert switch is not None and switch["at"] == first


def test_a_database_an_earlier_version_ran_on_dates_its_switch_over_by_its_oldest_marker(
    setup: tuple[Any, Store],
) -> None:
    _, store = setup
    store.db["scheduler_cycles"].insert_many(
        [
            {"_id": "u1:2026-11", "completedAt": datetime(2026, 11, 5, 17, tzinfo=UTC)},
            {"_id": "u1:2026-12", "completedAt": datetime(2026, 12, 5, 17, tzinfo=UTC)},
        ]
    )
    later = datetime(2027, 1, 12, 9, 0, tzinfo=UTC)
    assert store.cycles.switch_over(later, record=True) == datetime(2026, 11, 5, 17, tzinfo=UTC)


def test_the_run_creates_the_unique_keys_it_relies_on(
    setup: tuple[Any, Store], smtp_server: SmtpServer
) -> None:
    settings, store = setup
    alice = add_user(store)
    add_contacts(store, alice, "a@x.org")
    run_monthly(settings, store, at_send_moment())
    info = store.db["invitations"].index_information()
    unique = {tuple(k for k, _ in spec["key"]) for spec in info.values() if spec.get("unique")}
    assert ("fromUserId", "toEmail", "month") in unique and ("token",) in unique


def test_a_non_unique_index_on_the_invitation_keys_fails_the_run_clearly(
    setup: tuple[Any, Store], smtp_server: SmtpServer
) -> None:
    settings, store = setup
    store.db["invitations"].create_index([("fromUserId", 1), ("toEmail", 1), ("month", 1)])
    alice = add_user(store)
    add_contacts(store, alice, "a@x.org")

    result = run_monthly(settings, store, at_send_moment())

    assert (result.status, result.exit_code) == ("failed", ExitCode.FAILED)
    assert "without `unique`" in result.message
    assert store.db["invitations"].count_documents({}) == 0


def test_a_queued_invitation_without_a_status_field_is_sent(
    setup: tuple[Any, Store], smtp_server: SmtpServer
) -> None:
    settings, store = setup
    alice = add_user(store)
    add_contacts(store, alice, "a@x.org")
    doc = factories.invitation(
        alice["_id"], "a@x.org", "2027-01", expires_at=datetime(2027, 3, 1, tzinfo=UTC)
    )
    store.db["invitations"].insert_one(doc)  # made by the app: no status means queued

    result = run_monthly(settings, store, at_send_moment())

    assert result.stats["sentInvitations"] == 1 and result.stats["alreadyInvited"] == 1
    assert invitations_of(store, alice)["a@x.org"]["status"] == "sent"


def test_hostile_addresses_never_reach_a_header(
    setup: tuple[Any, Store], smtp_server: SmtpServer
) -> None:
    settings, store = setup
    mallory = add_user(store, email="mallory@x.org>, victim@evil.example")
    add_contacts(store, mallory, "ok@x.org")
    hostile = factories.invitation(
        mallory["_id"],
        "a@x.org\r\nBcc: victim@evil.example",
        "2027-01",
        expires_at=datetime(2027, 3, 1, tzinfo=UTC),
        status="queued",
    )
    store.db["invitations"].insert_one(hostile)

    result = run_monthly(settings, store, at_send_moment())

    assert result.stats["malformedInvitations"] == 1
    (received,) = smtp_server.received
    assert received.recipients == ["ok@x.org"]
    headers = received.raw.split(b"\r\n\r\n", 1)[0].lower()
    assert b"evil.example" not in headers and b"\nbcc:" not in headers
    assert received.message["Reply-To"] is None  # the sender's address was not plain


def test_an_invitation_whose_contact_unsubscribed_since_stays_queued(
    setup: tuple[Any, Store], smtp_server: SmtpServer
) -> None:
    settings, store = setup
    alice = add_user(store)
    add_contacts(store, alice, {"email": "gone@x.org", "emailStatus": "unsubscribed"})
    doc = factories.invitation(
        alice["_id"],
        "gone@x.org",
        "2027-01",
        expires_at=datetime(2027, 3, 1, tzinfo=UTC),
        status="queued",
    )
    store.db["invitations"].insert_one(doc)

    result = run_monthly(settings, store, at_send_moment())

    assert result.stats["heldContactUnreachable"] == 1
    assert smtp_server.received == []
    assert invitations_of(store, alice)["gone@x.org"]["status"] == "queued"


def test_an_invitation_the_app_moved_on_is_never_moved_back(
    store: Store, clock: FrozenClock
) -> None:
    owner = factories.user()["_id"]
    doc = factories.invitation(owner, "a@x.org", "2027-01", expires_at=clock.now(), status="opened")
    store.db["invitations"].insert_one(doc)
    assert store.invitations.mark_sent([(doc, "smtp")], clock.now()).applied == 0
    store.invitations.mark_bounced([(doc, "550")], clock.now(), ["queued", None])
    found = store.db["invitations"].find_one({"_id": doc["_id"]})
    assert found is not None and found["status"] == "opened"

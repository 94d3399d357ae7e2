"""monthly-invitations: the right invitations, created and sent exactly once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from formafriend_scheduler.clock import FrozenClock
from formafriend_scheduler.errors import ExitCode
from formafriend_scheduler.store import Store, connect
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


def test_every_eligible_contact_gets_one_well_formed_invitation(
    setup: tuple[Any, Store], smtp_server: SmtpServer
) -> None:
    settings, store = setup
    alice = add_user(
        store,
        email="alice@example.org",
        profile={"firstName": "Alice", "lastName": "Martin"},
        preferences={"emailTemplate": "professional", "customMessage": "À bientôt !"},
    )
    friend_user = add_user(store)
    add_contacts(
        store,
        alice,
        {"email": "bob@example.org", "firstName": "Bob", "status": "active"},
        {"email": "Carol@Example.org", "contactUserId": friend_user["_id"]},
        {"email": "gone@example.org", "optedOut": True},
    )
    clock = at_send_moment()

    result = run_monthly(settings, store, clock)

    assert (result.status, result.exit_code) == ("success", ExitCode.OK)
    assert result.stats["createdInvitations"] == 2
    assert result.stats["sentInvitations"] == 2
    assert result.stats["skippedContacts"] == 1
    invitations = invitations_of(store, alice)
    assert set(invitations) == {"bob@example.org", "carol@example.org"}
    bob = invitations["bob@example.org"]
    assert bob["type"] == "external" and "toUserId" not in bob
    assert invitations["carol@example.org"]["type"] == "user"
    assert invitations["carol@example.org"]["toUserId"] == friend_user["_id"]
    assert bob["month"] == "2027-01"
    assert bob["status"] == "sent"
    assert len(bob["token"]) == 64 and int(bob["token"], 16) >= 0
    assert len(bob["shortCode"]) == 6 and bob["shortCode"].isupper()
    assert bob["tracking"]["createdAt"] == clock.now()
    assert bob["tracking"]["sentAt"] == clock.now()
    assert bob["tracking"]["emailProvider"] == f"smtp:127.0.0.1:{smtp_server.port}"
    assert bob["expiresAt"] == clock.now() + timedelta(days=60)
    assert bob["metadata"] == {
        "template": "professional",
        "customMessage": "À bientôt !",
        "priority": "normal",
    }
    assert bob["reminders"] == []
    assert bob["createdAt"] == bob["updatedAt"] == clock.now()

    assert smtp_server.recipients() == {"bob@example.org": 1, "carol@example.org": 1}
    contact = store.db["contacts"].find_one({"email": "bob@example.org"})
    assert contact is not None
    assert contact["tracking"]["invitationsSent"] == 1
    assert contact["tracking"]["lastSentAt"] == clock.now()
    user = store.db["users"].find_one({"_id": alice["_id"]})
    assert user is not None
    assert user["metadata"]["lastMonthlyJobRun"] == clock.now()
    assert user["statistics"]["joinedCycles"] == 1


def test_the_email_carries_the_app_copy_links_and_headers(
    setup: tuple[Any, Store], smtp_server: SmtpServer
) -> None:
    settings, store = setup
    alice = add_user(store, email="alice@example.org", profile={"firstName": "Alice"})
    add_contacts(store, alice, {"email": "bob@example.org", "firstName": "Bob"})

    run_monthly(settings, store, at_send_moment())

    (received,) = smtp_server.received
    message = received.message
    invitation = invitations_of(store, alice)["bob@example.org"]
    token = invitation["token"]
    assert received.sender == "noreply@form-a-friend.com"
    assert message["Subject"] == "Alice - Invitation pour janvier 2027"
    assert message["To"] == "Bob <bob@example.org>"
    assert message["Reply-To"] == "Alice <alice@example.org>"
    assert message["Message-ID"] == f"<{invitation['_id']}.invitation@form-a-friend.com>"
    assert message["List-Unsubscribe"] == f"<https://faf.example.org/unsubscribe?token={token}>"
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    for body in (text, html):
        assert f"https://faf.example.org/form?token={token}" in body
        assert f"https://faf.example.org/unsubscribe?token={token}" in body
        assert "Bonjour Bob," in body
        assert "6 mars 2027" in body  # expiry: 60 days after 5 January, in Paris


def test_a_second_run_creates_and_sends_nothing(
    setup: tuple[Any, Store], smtp_server: SmtpServer
) -> None:
    settings, store = setup
    alice = add_user(store)
    add_contacts(store, alice, "a@example.org", "b@example.org")
    clock = at_send_moment()

    first = run_monthly(settings, store, clock)
    clock.advance(timedelta(hours=1))
    second = run_monthly(settings, store, clock)

    assert first.stats["sentInvitations"] == 2
    assert second.stats["totalUsers"] == 0 and second.stats["sentInvitations"] == 0
    assert second.exit_code == ExitCode.OK
    assert store.db["invitations"].count_documents({}) == 2
    assert len(smtp_server.received) == 2
    user = store.db["users"].find_one({"_id": alice["_id"]})
    assert user is not None and user["statistics"]["joinedCycles"] == 1


def test_nobody_is_due_before_their_moment(
    setup: tuple[Any, Store], smtp_server: SmtpServer
) -> None:
    settings, store = setup
    alice = add_user(store)
    add_contacts(store, alice, "a@example.org")
    clock = FrozenClock(SEND_MOMENT - timedelta(minutes=1))

    result = run_monthly(settings, store, clock)

    assert result.exit_code == ExitCode.OK
    assert result.stats["totalUsers"] == 0
    assert store.db["invitations"].count_documents({}) == 0


def test_an_hourly_run_honours_each_users_day_time_and_timezone(
    setup: tuple[Any, Store], smtp_server: SmtpServer
) -> None:
    settings, store = setup
    early = add_user(
        store, preferences={"sendDay": 3, "sendTime": "09:00", "timezone": "Asia/Tokyo"}
    )
    default = add_user(store)  # the 5th at 18:00 Paris
    late = add_user(
        store, preferences={"sendDay": 5, "sendTime": "18:00", "timezone": "America/Los_Angeles"}
    )
    for owner, email in ((early, "e@x.org"), (default, "d@x.org"), (late, "l@x.org")):
        add_contacts(store, owner, email)
    clock = FrozenClock(datetime(2027, 1, 3, 0, 0, tzinfo=UTC))  # 09:00 in Tokyo

    sent_by_hour = []
    for _ in range(3 * 24 + 3):  # an hourly cron from the 3rd, 00:00 to the 6th, 02:00 UTC
        result = run_monthly(settings, store, clock)
        if result.stats["sentInvitations"]:
            sent_by_hour.append((clock.now(), result.stats["sentInvitations"]))
        clock.advance(timedelta(hours=1))

    assert sent_by_hour == [
        (datetime(2027, 1, 3, 0, 0, tzinfo=UTC), 1),  # Tokyo, 3rd 09:00
        (datetime(2027, 1, 5, 17, 0, tzinfo=UTC), 1),  # Paris, 5th 18:00
        (datetime(2027, 1, 6, 2, 0, tzinfo=UTC), 1),  # Los Angeles, 5th 18:00 PST
    ]
    assert smtp_server.recipients() == {"e@x.org": 1, "d@x.org": 1, "l@x.org": 1}


def test_inactive_opted_out_and_invalid_senders(
    setup: tuple[Any, Store], smtp_server: SmtpServer
) -> None:
    settings, store = setup
    inactive = add_user(store, metadata={"isActive": False})
    opted_out = add_user(store, preferences={"optedOut": True})
    odd = add_user(
        store, preferences={"sendDay": 40, "timezone": "Nowhere/Land", "sendTime": "late"}
    )
    bare = add_user(store)  # no preferences, metadata or statistics at all
    for owner in (inactive, opted_out, odd, bare):
        add_contacts(store, owner, f"friend-of-{owner['_id']}@x.org")

    result = run_monthly(settings, store, at_send_moment())

    assert result.stats["totalUsers"] == 2  # odd falls back to the defaults: due now
    assert result.stats["invalidPreferences"] == 1
    assert set(smtp_server.recipients()) == {
        f"friend-of-{odd['_id']}@x.org",
        f"friend-of-{bare['_id']}@x.org",
    }


def test_every_contact_exclusion_rule(setup: tuple[Any, Store], smtp_server: SmtpServer) -> None:
    settings, store = setup
    alice = add_user(store)
    add_contacts(
        store,
        alice,
        "ok@x.org",
        {"email": "pending@x.org", "status": "pending"},
        {"email": "opted-status@x.org", "status": "opted_out"},
        {"email": "bounced-status@x.org", "status": "bounced"},
        {"email": "blocked@x.org", "status": "blocked"},
        {"email": "opted@x.org", "optedOut": True},
        {"email": "inactive@x.org", "isActive": False},
        {"email": "hard@x.org", "emailStatus": "bounced_permanent"},
        {"email": "complained@x.org", "emailStatus": "complained"},
        {"email": "unsub@x.org", "emailStatus": "unsubscribed"},
        {"email": "five@x.org", "bounceCount": 5},
        {"email": "soft@x.org", "emailStatus": "bounced_temporary", "bounceCount": 2},
        {"email": "not an address"},
    )

    result = run_monthly(settings, store, at_send_moment())

    assert set(smtp_server.recipients()) == {"ok@x.org", "pending@x.org", "soft@x.org"}
    assert result.stats["skippedContacts"] == 10
    assert result.stats["skippedMalformed"] == 1


def test_dry_run_counts_and_writes_nothing(
    setup: tuple[Any, Store], smtp_server: SmtpServer
) -> None:
    settings, store = setup
    alice = add_user(store)
    add_contacts(store, alice, "a@x.org", "b@x.org")

    result = run_monthly(settings, store, at_send_moment(), dry_run=True)

    assert result.stats["createdInvitations"] == 2
    assert result.stats["wouldSend"] == 2
    assert "nothing written" in result.message
    assert store.db["invitations"].count_documents({}) == 0
    assert smtp_server.received == []
    user = store.db["users"].find_one({"_id": alice["_id"]})
    assert user is not None and "metadata" not in user


def test_user_and_limit_restrict_the_run(setup: tuple[Any, Store], smtp_server: SmtpServer) -> None:
    settings, store = setup
    users = [add_user(store) for _ in range(3)]
    for index, owner in enumerate(users):
        add_contacts(store, owner, f"c{index}@x.org")
    clock = at_send_moment()

    only = run_monthly(settings, store, clock, user_id=str(users[1]["_id"]))
    limited = run_monthly(settings, store, clock, limit=1)
    rest = run_monthly(settings, store, clock)

    assert only.stats["totalUsers"] == 1 and set(smtp_server.recipients()) >= {"c1@x.org"}
    assert limited.stats["totalUsers"] == 1
    assert rest.stats["totalUsers"] == 1
    assert smtp_server.recipients() == {"c0@x.org": 1, "c1@x.org": 1, "c2@x.org": 1}


def test_a_temporary_refusal_is_retried_and_the_message_goes_out(
    setup: tuple[Any, Store], smtp_server: SmtpServer
) -> None:
    settings, store = setup
    alice = add_user(store)
    add_contacts(store, alice, "busy@x.org")
    smtp_server.refuse_once("busy@x.org", "451 4.7.1 Greylisted, try again")

    result = run_monthly(settings, store, at_send_moment())

    assert result.stats["sentInvitations"] == 1 and result.stats["failedInvitations"] == 0
    assert smtp_server.recipients() == {"busy@x.org": 1}


def test_a_permanent_refusal_bounces_the_invitation_and_the_contact(
    setup: tuple[Any, Store], smtp_server: SmtpServer
) -> None:
    settings, store = setup
    alice = add_user(store)
    add_contacts(store, alice, "ok@x.org", {"email": "nobody@x.org", "bounceCount": 1})
    smtp_server.refuse_always("nobody@x.org", "550 5.1.1 User unknown")
    clock = at_send_moment()

    result = run_monthly(settings, store, clock)

    assert result.stats["bouncedInvitations"] == 1 and result.stats["sentInvitations"] == 1
    invitation = invitations_of(store, alice)["nobody@x.org"]
    assert invitation["status"] == "bounced"
    assert "550" in invitation["tracking"]["bounceReason"]
    contact = store.db["contacts"].find_one({"email": "nobody@x.org"})
    assert contact is not None
    assert contact["bounceCount"] == 2
    assert contact["lastBounceAt"] == clock.now()
    assert "User unknown" in contact["bounceReason"]
    assert (contact["emailStatus"], contact["isActive"], contact["status"]) == (
        "bounced_permanent",
        False,
        "bounced",
    )
    assert result.exit_code == ExitCode.PARTIAL  # 50 % bounced is over the 5 % threshold


def test_a_mail_server_outage_fails_the_run_and_the_next_run_sends_everything(
    mongodb_uri: str, smtp_server: SmtpServer
) -> None:
    settings = monthly_settings(mongodb_uri, smtp_server.url)
    store = connect(settings)
    alice = add_user(store)
    add_contacts(store, alice, *(f"c{i}@x.org" for i in range(30)))
    clock = at_send_moment()
    smtp_server.stop()

    down = run_monthly(settings, store, clock)

    assert (down.status, down.exit_code) == ("failed", ExitCode.FAILED)
    assert down.stats["sentInvitations"] == 0
    assert down.stats["createdInvitations"] == 30
    assert store.db["invitations"].count_documents({"status": "queued"}) == 30
    assert store.db["contacts"].count_documents({"emailStatus": "bounced_permanent"}) == 0

    smtp_server.start()
    clock.advance(timedelta(hours=1))
    back = run_monthly(settings, store, clock)

    assert back.exit_code == ExitCode.OK
    assert back.stats["sentInvitations"] == 30
    assert smtp_server.recipients() == {f"c{i}@x.org": 1 for i in range(30)}
    assert store.db["invitations"].count_documents({"status": "sent"}) == 30


def test_hostile_names_and_messages_are_escaped_and_never_reach_a_header(
    setup: tuple[Any, Store], smtp_server: SmtpServer
) -> None:
    settings, store = setup
    mallory = add_user(
        store,
        username="mallory",
        profile={"firstName": "Mal\r\nBcc: victim@evil.example", "lastName": "<script>x</script>"},
        preferences={"customMessage": "<img src=x onerror=alert(1)>\r\nSubject: spam"},
    )
    add_contacts(store, mallory, {"email": "bob@x.org", "firstName": "Bob\nX-Evil: 1"})

    run_monthly(settings, store, at_send_moment())

    (received,) = smtp_server.received
    assert received.recipients == ["bob@x.org"]
    message = received.message
    assert message["Bcc"] is None and message["X-Evil"] is None
    headers = received.raw.split(b"\r\n\r\n", 1)[0].decode().lower()
    assert "\nbcc:" not in headers and "\nx-evil:" not in headers
    assert message["Subject"].startswith("Mal Bcc: victim@evil.example <script>x</script> - ")
    html = message.get_body(("html",)).get_content()
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "<img" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html


def test_the_memory_limit_stops_dispatching_and_ends_partial(
    mongodb_uri: str, smtp_server: SmtpServer
) -> None:
    settings = monthly_settings(mongodb_uri, smtp_server.url, max_memory_mb=1)
    store = connect(settings)
    alice = add_user(store)
    add_contacts(store, alice, "a@x.org")

    result = run_monthly(settings, store, at_send_moment())

    assert (result.status, result.exit_code) == ("partial", ExitCode.PARTIAL)
    assert "SCHEDULER_MAX_MEMORY_MB" in result.message
    assert store.db["invitations"].count_documents({}) == 0
    assert "high-memory-usage" in [event["event"] for event in result.events]


def test_queued_invitations_left_by_an_earlier_run_are_sent(
    setup: tuple[Any, Store], smtp_server: SmtpServer
) -> None:
    settings, store = setup
    alice = add_user(store)
    add_contacts(store, alice, "a@x.org", "b@x.org")
    clock = at_send_moment()
    run_monthly(settings, store, clock, dry_run=False, limit=None)
    # Given an invitation the app (or a crash) left queued, without an outbox entry,
    store.db["invitations"].update_one({"toEmail": "b@x.org"}, {"$set": {"status": "queued"}})
    store.db["scheduler_outbox"].delete_many({})
    clock.advance(timedelta(hours=1))

    result = run_monthly(settings, store, clock)

    assert result.stats["totalUsers"] == 0
    assert result.stats["sentInvitations"] == 1
    assert smtp_server.recipients() == {"a@x.org": 1, "b@x.org": 2}


def test_the_month_defaults_to_the_current_one_in_the_scheduler_timezone(
    setup: tuple[Any, Store], smtp_server: SmtpServer
) -> None:
    settings, store = setup
    alice = add_user(store, preferences={"sendDay": 1, "sendTime": "00:30"})
    add_contacts(store, alice, "a@x.org")
    clock = FrozenClock(datetime(2026, 12, 31, 23, 45, tzinfo=UTC))  # 00:45 on 1 January in Paris

    result = run_monthly(settings, store, clock, month=None)

    assert result.stats["sentInvitations"] == 1
    assert invitations_of(store, alice)["a@x.org"]["month"] == str(JANUARY)


def test_a_run_stopped_after_the_outbox_knew_finishes_the_apps_data_without_resending(
    setup: tuple[Any, Store], smtp_server: SmtpServer
) -> None:
    settings, store = setup
    alice = add_user(store)
    add_contacts(store, alice, "a@x.org", "b@x.org")
    clock = at_send_moment()
    run_monthly(settings, store, clock)
    # Given a run that stopped once the outbox said `sent` but before the app's
    # data did (they are written for every RECORD_EVERY messages): the
    # invitations still queued, the contacts not counted,
    store.db["invitations"].update_many(
        {}, {"$set": {"status": "queued"}, "$unset": {"tracking.sentAt": ""}}
    )
    store.db["contacts"].update_many(
        {}, {"$set": {"tracking.invitationsSent": 0}, "$unset": {"tracking.lastSentAt": ""}}
    )
    clock.advance(timedelta(hours=1))

    result = run_monthly(settings, store, clock)

    assert smtp_server.recipients() == {"a@x.org": 1, "b@x.org": 1}  # nothing sent again
    assert result.stats["sentInvitations"] == 0
    assert store.db["invitations"].count_documents({"status": "sent"}) == 2
    for contact in store.db["contacts"].find():
        assert contact["tracking"]["invitationsSent"] == 1
        assert contact["tracking"]["lastSentAt"] is not None

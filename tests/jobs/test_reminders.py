"""reminders: the right reminder, once, at a decent hour, to a reachable contact."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from formafriend_scheduler.clock import FrozenClock
from formafriend_scheduler.config import Settings
from formafriend_scheduler.errors import ExitCode
from formafriend_scheduler.hooks.events import EventBus
from formafriend_scheduler.jobs import reminders as reminders_job
from formafriend_scheduler.jobs.reminders import ReminderOptions, RemindersJob
from formafriend_scheduler.lifecycle.runner import Runner, RunResult
from formafriend_scheduler.store import Store, connect
from tests import factories
from tests.jobs.monthly_helpers import add_contacts, add_user, monthly_settings
from tests.smtpserver import SmtpServer

SENT = datetime(2027, 1, 5, 17, 0, tzinfo=UTC)  # 18:00 in Paris
DAY = timedelta(days=1)
MINUTE = timedelta(minutes=1)


def run_reminders(
    settings: Settings, store: Store, clock: FrozenClock, **options: Any
) -> RunResult:
    options.setdefault("workers", 0)
    runner = Runner(settings, store, clock, EventBus(clock), check_clock_skew=False)
    return runner.run(RemindersJob(ReminderOptions(**options)), {})


def add_invitation(
    store: Store, owner: dict[str, Any], email: str, **fields: Any
) -> dict[str, Any]:
    defaults: dict[str, Any] = {
        "status": "sent",
        "tracking": {"createdAt": SENT, "sentAt": SENT},
        "reminders": [],
        "metadata": {"template": "friendly"},
    }
    doc = factories.invitation(
        owner["_id"], email, "2027-01", expires_at=fields.pop("expiresAt", SENT + 60 * DAY),
        **{**defaults, **fields},
    )  # fmt: skip
    store.db["invitations"].insert_one(doc)
    return doc


def reminders_of(store: Store, invitation: dict[str, Any]) -> list[str]:
    doc = store.db["invitations"].find_one({"_id": invitation["_id"]})
    assert doc is not None
    return [r["type"] for r in doc.get("reminders", [])]


@pytest.fixture
def setup(mongodb_uri: str, smtp_server: SmtpServer) -> tuple[Settings, Store]:
    settings = monthly_settings(mongodb_uri, smtp_server.url)
    return settings, connect(settings)


def one_invitation(store: Store, **invitation_fields: Any) -> dict[str, Any]:
    alice = add_user(store, email="alice@example.org", profile={"firstName": "Alice"})
    add_contacts(store, alice, {"email": "bob@x.org", "firstName": "Bob"})
    return add_invitation(store, alice, "bob@x.org", **invitation_fields)


def test_the_first_reminder_goes_out_at_j_plus_3_and_not_a_minute_before(
    setup: tuple[Settings, Store], smtp_server: SmtpServer
) -> None:
    settings, store = setup
    invitation = one_invitation(store)
    clock = FrozenClock(SENT + 3 * DAY - MINUTE)

    early = run_reminders(settings, store, clock)
    assert early.stats["firstRemindersSent"] == 0 and smtp_server.received == []
    clock.advance(2 * MINUTE)
    on_time = run_reminders(settings, store, clock)

    assert on_time.stats["firstRemindersSent"] == 1
    doc = store.db["invitations"].find_one({"_id": invitation["_id"]})
    assert doc is not None
    assert doc["reminders"] == [{"type": "first", "sentAt": clock.now(), "opened": False}]
    assert doc["status"] == "sent"  # a reminder never moves the invitation


def test_first_then_second_and_never_a_third(
    setup: tuple[Settings, Store], smtp_server: SmtpServer
) -> None:
    settings, store = setup
    invitation = one_invitation(store)
    clock = FrozenClock(SENT + 3 * DAY)

    sent = []
    for _ in range(12):  # a daily run from J+3 to J+14
        result = run_reminders(settings, store, clock)
        sent.append((result.stats["firstRemindersSent"], result.stats["secondRemindersSent"]))
        clock.advance(DAY)

    assert sent[0] == (1, 0)
    assert sent[4] == (0, 1)  # J+7
    assert sum(f for f, _ in sent) == 1 and sum(s for _, s in sent) == 1
    assert reminders_of(store, invitation) == ["first", "second"]
    subjects = [m.message["Subject"] for m in smtp_server.received]
    assert subjects == [
        "Alice - 1er rappel pour janvier 2027",
        "Alice - 2ème rappel pour janvier 2027",
    ]


def test_an_invitation_reaching_j_plus_7_without_a_first_gets_only_the_second(
    setup: tuple[Settings, Store], smtp_server: SmtpServer
) -> None:
    settings, store = setup
    invitation = one_invitation(store)
    clock = FrozenClock(SENT + 7 * DAY + MINUTE)

    first_run = run_reminders(settings, store, clock)
    second_run = run_reminders(settings, store, clock)

    assert (first_run.stats["firstRemindersSent"], first_run.stats["secondRemindersSent"]) == (0, 1)
    assert second_run.stats["secondRemindersSent"] == 0
    assert reminders_of(store, invitation) == ["second"]
    assert len(smtp_server.received) == 1


def test_the_reminder_emails_say_how_long_is_left_and_carry_the_links(
    setup: tuple[Settings, Store], smtp_server: SmtpServer
) -> None:
    settings, store = setup
    invitation = one_invitation(store, metadata={"template": "professional"})

    run_reminders(settings, store, FrozenClock(SENT + 3 * DAY))
    run_reminders(settings, store, FrozenClock(SENT + 7 * DAY))

    first, second = (m.message for m in smtp_server.received)
    token = invitation["token"]
    for message, days in ((first, 57), (second, 53)):
        text = message.get_body(("plain",)).get_content()
        html = message.get_body(("html",)).get_content()
        assert f"Il reste {days} jours avant son expiration" in text
        assert f"https://faf.example.org/form?token={token}" in html
        assert message["List-Unsubscribe"] == f"<https://faf.example.org/unsubscribe?token={token}>"
        assert "Bonjour Bob," in text
    assert first["Message-ID"] == f"<{invitation['_id']}.reminder-first@form-a-friend.com>"
    assert second["Message-ID"] == f"<{invitation['_id']}.reminder-second@form-a-friend.com>"


@pytest.mark.parametrize("created_at", ["createdAt", "tracking.createdAt"])
def test_an_invitation_without_expires_at_lives_60_days_from_its_creation(
    setup: tuple[Settings, Store], smtp_server: SmtpServer, created_at: str
) -> None:
    settings, store = setup
    invitation = one_invitation(store)
    update: dict[str, Any] = {"$unset": {"expiresAt": ""}}
    if created_at == "createdAt":
        update["$set"] = {"createdAt": SENT}
    store.db["invitations"].update_one({"_id": invitation["_id"]}, update)

    run_reminders(settings, store, FrozenClock(SENT + 3 * DAY))
    assert reminders_of(store, invitation) == ["first"]
    text = smtp_server.received[0].message.get_body(("plain",)).get_content()
    assert "Il vous reste 57 jours" in text
    run_reminders(settings, store, FrozenClock(SENT + 61 * DAY))
    assert reminders_of(store, invitation) == ["first"]  # expired: no second


@pytest.mark.parametrize(
    ("fields", "reminded"),
    [
        ({"status": "opened"}, True),
        ({"status": "started"}, True),
        ({"status": "submitted"}, False),
        ({"status": "queued"}, False),
        ({"status": "expired"}, False),
        ({"expiresAt": SENT + 2 * DAY}, False),  # expired before J+3
    ],
)
def test_only_sent_opened_and_started_invitations_not_expired(
    setup: tuple[Settings, Store], smtp_server: SmtpServer, fields: dict[str, Any], reminded: bool
) -> None:
    settings, store = setup
    invitation = one_invitation(store, **fields)
    run_reminders(settings, store, FrozenClock(SENT + 3 * DAY))
    assert reminders_of(store, invitation) == (["first"] if reminded else [])


@pytest.mark.parametrize(
    ("user_fields", "stat"),
    [
        ({"preferences": {"reminderSettings": {"firstReminder": False}}}, "skippedPreference"),
        ({"preferences": {"reminderSettings": {"reminderChannel": "push"}}}, "skippedPreference"),
        ({"preferences": {"optedOut": True}}, "skippedPreference"),
        ({"metadata": {"isActive": False}}, "skippedPreference"),
    ],
)
def test_the_senders_preferences_are_honoured(
    setup: tuple[Settings, Store], smtp_server: SmtpServer, user_fields: dict[str, Any], stat: str
) -> None:
    settings, store = setup
    alice = add_user(store, **user_fields)
    add_contacts(store, alice, "bob@x.org")
    invitation = add_invitation(store, alice, "bob@x.org")

    result = run_reminders(settings, store, FrozenClock(SENT + 3 * DAY))

    assert result.stats[stat] == 1
    assert reminders_of(store, invitation) == [] and smtp_server.received == []


def test_first_reminder_off_still_lets_the_second_go(
    setup: tuple[Settings, Store], smtp_server: SmtpServer
) -> None:
    settings, store = setup
    alice = add_user(store, preferences={"reminderSettings": {"firstReminder": False}})
    add_contacts(store, alice, "bob@x.org")
    invitation = add_invitation(store, alice, "bob@x.org")
    run_reminders(settings, store, FrozenClock(SENT + 3 * DAY))
    run_reminders(settings, store, FrozenClock(SENT + 7 * DAY))
    assert reminders_of(store, invitation) == ["second"]


def test_second_reminder_off_stops_after_the_first(
    setup: tuple[Settings, Store], smtp_server: SmtpServer
) -> None:
    settings, store = setup
    alice = add_user(store, preferences={"reminderSettings": {"secondReminder": False}})
    add_contacts(store, alice, "bob@x.org")
    invitation = add_invitation(store, alice, "bob@x.org")
    run_reminders(settings, store, FrozenClock(SENT + 3 * DAY))
    at_j7 = run_reminders(settings, store, FrozenClock(SENT + 7 * DAY))
    assert reminders_of(store, invitation) == ["first"]
    assert at_j7.stats["skippedPreference"] == 1 and len(smtp_server.received) == 1


@pytest.mark.parametrize(
    "contact_fields",
    [
        {"optedOut": True},
        {"status": "opted_out"},
        {"status": "bounced"},
        {"emailStatus": "bounced_permanent"},
        {"emailStatus": "complained"},
        {"emailStatus": "unsubscribed"},
        {"isActive": False},
        {"bounceCount": 5},
    ],
)
def test_a_contact_that_can_no_longer_receive_is_skipped(
    setup: tuple[Settings, Store], smtp_server: SmtpServer, contact_fields: dict[str, Any]
) -> None:
    settings, store = setup
    alice = add_user(store)
    add_contacts(store, alice, {"email": "bob@x.org", **contact_fields})
    invitation = add_invitation(store, alice, "bob@x.org")

    result = run_reminders(settings, store, FrozenClock(SENT + 3 * DAY))

    assert result.stats["skippedContact"] == 1
    assert reminders_of(store, invitation) == [] and smtp_server.received == []


def test_quiet_hours_follow_the_senders_timezone(
    setup: tuple[Settings, Store], smtp_server: SmtpServer
) -> None:
    settings, store = setup
    tokyo = add_user(store, preferences={"timezone": "Asia/Tokyo"})
    paris = add_user(store)
    add_contacts(store, tokyo, "t@x.org")
    add_contacts(store, paris, "p@x.org")
    add_invitation(store, tokyo, "t@x.org")
    add_invitation(store, paris, "p@x.org")
    clock = FrozenClock(SENT + 3 * DAY)  # 17:00 UTC: 18:00 in Paris, 02:00 in Tokyo

    evening = run_reminders(settings, store, clock)
    clock.advance(timedelta(hours=7))  # 00:00 UTC: 01:00 in Paris, 09:00 in Tokyo
    morning = run_reminders(settings, store, clock)

    assert (evening.stats["firstRemindersSent"], evening.stats["outsideWindow"]) == (1, 1)
    assert (morning.stats["firstRemindersSent"], morning.stats["outsideWindow"]) == (1, 0)
    assert [m.recipients for m in smtp_server.received] == [["p@x.org"], ["t@x.org"]]


def test_a_rerun_sends_nothing_again(
    setup: tuple[Settings, Store], smtp_server: SmtpServer
) -> None:
    settings, store = setup
    one_invitation(store)
    clock = FrozenClock(SENT + 3 * DAY)
    run_reminders(settings, store, clock)
    again = run_reminders(settings, store, clock)
    assert again.stats["candidatesChecked"] == 0
    assert len(smtp_server.received) == 1


def test_a_reminder_claimed_by_a_run_that_crashed_before_sending_is_sent_by_the_next(
    setup: tuple[Settings, Store], smtp_server: SmtpServer
) -> None:
    settings, store = setup
    invitation = one_invitation(store)
    # Given a run claimed the reminder (outbox `handed`) and died before sending,
    store.db["scheduler_outbox"].insert_one(
        {
            "_id": f"{invitation['_id']}:reminder-first",
            "invitationId": invitation["_id"],
            "kind": "reminder-first",
            "state": "handed",
            "runId": "reminders-dead",
            "claimant": "reminders-dead/4242",
            "attempts": 1,
        }
    )

    result = run_reminders(settings, store, FrozenClock(SENT + 3 * DAY))

    assert result.stats["firstRemindersSent"] == 1
    assert reminders_of(store, invitation) == ["first"]
    outbox = store.db["scheduler_outbox"].find_one({"_id": f"{invitation['_id']}:reminder-first"})
    assert outbox is not None and (outbox["state"], outbox["attempts"]) == ("sent", 2)


def test_a_reminder_sent_but_not_recorded_is_recorded_without_sending_again(
    setup: tuple[Settings, Store], smtp_server: SmtpServer
) -> None:
    settings, store = setup
    invitation = one_invitation(store)
    # Given a run sent the reminder and died before pushing it to the invitation,
    store.db["scheduler_outbox"].insert_one(
        {
            "_id": f"{invitation['_id']}:reminder-first",
            "invitationId": invitation["_id"],
            "kind": "reminder-first",
            "state": "sent",
            "claimant": "reminders-dead/4242",
        }
    )

    result = run_reminders(settings, store, FrozenClock(SENT + 3 * DAY))

    assert result.stats["alreadySent"] == 1
    assert reminders_of(store, invitation) == ["first"]
    assert smtp_server.received == []


def test_a_permanent_refusal_bounces_invitation_and_contact(
    setup: tuple[Settings, Store], smtp_server: SmtpServer
) -> None:
    settings, store = setup
    invitation = one_invitation(store, status="opened")
    smtp_server.refuse_always("bob@x.org", "550 5.1.1 Mailbox deleted")

    result = run_reminders(settings, store, FrozenClock(SENT + 3 * DAY))

    assert result.stats["bouncedReminders"] == 1
    doc = store.db["invitations"].find_one({"_id": invitation["_id"]})
    assert doc is not None and doc["status"] == "bounced" and doc["reminders"] == []
    contact = store.db["contacts"].find_one({"email": "bob@x.org"})
    assert contact is not None and contact["emailStatus"] == "bounced_permanent"


def add_sent_a_minute_apart(store: Store, count: int) -> None:
    alice = add_user(store)
    add_contacts(store, alice, *(f"c{i}@x.org" for i in range(count)))
    for i in range(count):
        add_invitation(store, alice, f"c{i}@x.org", tracking={"sentAt": SENT + i * MINUTE})


def test_every_candidate_is_streamed_in_batches_without_a_cap(
    mongodb_uri: str, smtp_server: SmtpServer
) -> None:
    settings = monthly_settings(mongodb_uri, smtp_server.url, invitation_batch_size=10)
    store = connect(settings)
    add_sent_a_minute_apart(store, 35)

    result = run_reminders(settings, store, FrozenClock(SENT + 4 * DAY))

    assert result.stats["firstRemindersSent"] == 35
    assert result.stats["batchesProcessed"] == 4
    assert len(smtp_server.recipients()) == 35


def test_candidates_read_a_page_at_a_time_are_each_sent_once(
    mongodb_uri: str, smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Pages of 12 ids read in one query each, cut into batches of 10: the
    # page and batch edges fall apart, and nothing is lost or sent twice.
    monkeypatch.setattr(reminders_job, "READ_PAGE", 12)
    settings = monthly_settings(mongodb_uri, smtp_server.url, invitation_batch_size=10)
    store = connect(settings)
    add_sent_a_minute_apart(store, 35)

    result = run_reminders(settings, store, FrozenClock(SENT + 4 * DAY))

    assert result.stats["firstRemindersSent"] == 35
    assert result.stats["batchesProcessed"] == 6  # 10 + 2, 10 + 2, 10 + 1
    assert sorted(smtp_server.recipients()) == sorted(f"c{i}@x.org" for i in range(35))


def test_dry_run_type_and_limit(setup: tuple[Settings, Store], smtp_server: SmtpServer) -> None:
    settings, store = setup
    alice = add_user(store)
    add_contacts(store, alice, "a@x.org", "b@x.org", "c@x.org")
    add_invitation(store, alice, "a@x.org")  # due its first at J+3
    add_invitation(store, alice, "b@x.org", tracking={"sentAt": SENT - 4 * DAY})  # due its second
    add_invitation(store, alice, "c@x.org", tracking={"sentAt": SENT - 4 * DAY})
    clock = FrozenClock(SENT + 3 * DAY + MINUTE)

    dry = run_reminders(settings, store, clock, dry_run=True)
    assert (dry.stats["firstRemindersToSend"], dry.stats["secondRemindersToSend"]) == (1, 2)
    assert smtp_server.received == [] and "nothing sent" in dry.message

    only_first = run_reminders(settings, store, clock, only="first")
    assert (only_first.stats["firstRemindersSent"], only_first.stats["secondRemindersSent"]) == (
        1,
        0,
    )
    limited = run_reminders(settings, store, clock, limit=1)
    assert limited.stats["candidatesChecked"] == 1
    assert limited.exit_code == ExitCode.OK


def test_a_reminder_claimed_by_a_live_run_waits_and_a_dead_runs_claim_is_taken_over(
    setup: tuple[Settings, Store], smtp_server: SmtpServer
) -> None:
    settings, store = setup  # SCHEDULER_WORKER_TIMEOUT_MS: a claim older than that is dead
    invitation = one_invitation(store)
    clock = FrozenClock(SENT + 3 * DAY)
    key = f"{invitation['_id']}:reminder-first"
    store.outbox.claim(
        [(key, invitation["_id"], "reminder-first")], "other-run/1", "other-run", clock.now(),
        stale_before=clock.now(),
    )  # fmt: skip

    while_live = run_reminders(settings, store, clock)
    assert while_live.stats["alreadySent"] == 1 and smtp_server.received == []
    assert reminders_of(store, invitation) == []

    clock.advance(timedelta(milliseconds=settings.worker_timeout_ms + 1000))
    after_death = run_reminders(settings, store, clock)
    assert after_death.stats["firstRemindersSent"] == 1
    assert smtp_server.recipients() == {"bob@x.org": 1}


def test_reminders_the_run_did_not_get_to_are_pending_not_failed(
    setup: tuple[Settings, Store], smtp_server: SmtpServer
) -> None:
    """Given 30 reminders due and a mail server that is down, the messages
    tried fail (the run stops at the first chunk that all failed) and the
    rest are counted not attempted: left for the next run, not failures, so
    they weigh nothing in the error rate."""
    settings, store = setup
    alice = add_user(store, email="alice@example.org")
    emails = [f"c{i:02d}@x.org" for i in range(30)]
    add_contacts(store, alice, *emails)
    for email in emails:
        add_invitation(store, alice, email)
    smtp_server.stop()

    result = run_reminders(settings, store, FrozenClock(SENT + 3 * DAY))

    failed, pending = result.stats["failedReminders"], result.stats["notAttempted"]
    assert failed + pending == 30 and 0 < failed < 30
    assert f"{pending} not attempted (left for the next run)" in result.message
    assert (result.status, result.exit_code) == ("failed", ExitCode.FAILED)
    smtp_server.start()
    again = run_reminders(settings, store, FrozenClock(SENT + 3 * DAY + MINUTE))
    assert again.stats["firstRemindersSent"] == 30

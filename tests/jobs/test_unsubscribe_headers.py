"""One-click unsubscribe (RFC 8058) on every message kind, as received by a
real SMTP server; and no data, however hostile, reaches a header raw."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest

from formafriend_scheduler.config import Settings
from formafriend_scheduler.errors import ConfigError
from formafriend_scheduler.hooks.events import EventBus
from formafriend_scheduler.jobs.reminders import ReminderOptions, RemindersJob
from formafriend_scheduler.lifecycle.runner import Runner
from formafriend_scheduler.store import Store, connect
from tests import factories
from tests.jobs.monthly_helpers import (
    REMINDERS_AT_ANY_HOUR,
    add_contacts,
    add_user,
    at_send_moment,
    invitations_of,
    monthly_settings,
    run_monthly,
)
from tests.smtpserver import Received, SmtpServer

ONE_CLICK = "List-Unsubscribe=One-Click"
# A header line: a name and a colon, or a folded continuation (starts with a space).
HEADER_LINE = re.compile(rb"^([A-Za-z-]+: | )[\x20-\x7e]*$")


def send_all_three_kinds(settings: Settings, store: Store, *emails: str) -> dict[str, Any]:
    """An invitation, then its first and second reminders, to each e-mail
    from Alice (returned)."""
    clock = at_send_moment()
    alice = add_user(store, email="alice@example.org", profile={"firstName": "Alice"})
    add_contacts(store, alice, *emails)
    run_monthly(settings, store, clock)
    runner = Runner(settings, store, clock, EventBus(clock), check_clock_skew=False)
    for days in (3, 4):
        clock.advance(timedelta(days=days, minutes=1))
        runner.run(RemindersJob(ReminderOptions(workers=0)), {})
    return alice


def settings_for(mongodb_uri: str, smtp_server: SmtpServer, **overrides: Any) -> Settings:
    return monthly_settings(mongodb_uri, smtp_server.url, **REMINDERS_AT_ANY_HOUR, **overrides)


def header_block(received: Received) -> list[bytes]:
    return received.raw.split(b"\r\n\r\n", 1)[0].split(b"\r\n")


def test_every_kind_carries_a_one_click_unsubscribe(
    mongodb_uri: str, smtp_server: SmtpServer
) -> None:
    settings = settings_for(mongodb_uri, smtp_server)
    store = connect(settings)

    alice = send_all_three_kinds(settings, store, "bob@example.org")

    token = invitations_of(store, alice)["bob@example.org"]["token"]
    kinds = [m.message["X-Form-A-Friend-Kind"] for m in smtp_server.received]
    assert kinds == ["invitation", "reminder-first", "reminder-second"]
    for received in smtp_server.received:
        message = received.message
        assert message["List-Unsubscribe"] == f"<https://faf.example.org/unsubscribe?token={token}>"
        assert message["List-Unsubscribe-Post"] == ONE_CLICK


def test_a_mailbox_is_offered_beside_the_link_and_the_post_header_can_be_turned_off(
    mongodb_uri: str, smtp_server: SmtpServer
) -> None:
    settings = settings_for(
        mongodb_uri,
        smtp_server,
        email_unsubscribe_mailto="unsubscribe@form-a-friend.com",
        email_one_click_unsubscribe=False,
    )
    store = connect(settings)

    send_all_three_kinds(settings, store, "bob@example.org")

    assert len(smtp_server.received) == 3
    for received in smtp_server.received:
        message = received.message
        link, mailbox = (part.strip() for part in str(message["List-Unsubscribe"]).split(","))
        assert link.startswith("<https://faf.example.org/unsubscribe?token=")
        token = link.split("token=")[1].rstrip(">")
        assert mailbox == (f"<mailto:unsubscribe@form-a-friend.com?subject=unsubscribe%20{token}>")
        assert message["List-Unsubscribe-Post"] is None
        assert all(len(line) <= 998 for line in header_block(received))


def test_an_http_link_gets_no_one_click_header(mongodb_uri: str, smtp_server: SmtpServer) -> None:
    # RFC 8058: one-click is for HTTPS links only.
    settings = settings_for(mongodb_uri, smtp_server, app_base_url="http://faf.example.org")
    store = connect(settings)
    add_contacts(store, add_user(store), "bob@example.org")

    run_monthly(settings, store, at_send_moment())

    (received,) = smtp_server.received
    assert received.message["List-Unsubscribe"].startswith("<http://faf.example.org/unsubscribe")
    assert received.message["List-Unsubscribe-Post"] is None


HOSTILE = "Eve\r\nBcc: victim@example.net\x00\x1b[31m\u202e\u2028"


def test_no_hostile_name_e_mail_or_token_reaches_a_header_raw(
    mongodb_uri: str, smtp_server: SmtpServer
) -> None:
    settings = settings_for(mongodb_uri, smtp_server)
    store = connect(settings)
    eve = add_user(
        store,
        email="eve@example.org\r\nBcc: victim@example.net",
        profile={"firstName": HOSTILE, "lastName": "<script>alert(1)</script>" * 20},
        preferences={"customMessage": HOSTILE},
    )
    add_contacts(
        store,
        eve,
        {"email": "bob@example.org", "firstName": HOSTILE, "lastName": HOSTILE},
        {"email": "carol@example.org\r\nBcc: victim@example.net"},
    )
    clock = at_send_moment()
    run_monthly(settings, store, clock)
    # An invitation written by someone else, with a hostile token, due a reminder.
    sent = clock.now() - timedelta(days=3, minutes=1)
    store.db["invitations"].insert_one(
        factories.invitation(
            eve["_id"], "bob@example.org", "2026-12", expires_at=sent + timedelta(days=60),
            token="t0k\r\nBcc: victim@example.net", status="sent",
            tracking={"createdAt": sent, "sentAt": sent}, reminders=[],
        )
    )  # fmt: skip
    Runner(settings, store, clock, EventBus(clock), check_clock_skew=False).run(
        RemindersJob(ReminderOptions(workers=0)), {}
    )

    assert [r.recipients for r in smtp_server.received] == [["bob@example.org"]] * 2
    for received in smtp_server.received:
        for line in header_block(received):
            assert HEADER_LINE.match(line), line
        message = received.message
        assert "victim" not in " ".join(received.recipients)
        assert message["Bcc"] is None and message["Cc"] is None
        assert "\n" not in str(message["Subject"]) and "\n" not in str(message["To"])
    reminder = smtp_server.received[1].message
    assert "token=t0k%0D%0ABcc%3A%20victim%40example.net>" in reminder["List-Unsubscribe"]


@pytest.mark.parametrize("value", ["unsub@exämple.org", "un?sub@x.org", "a%40b@x.org", "a@b@x.org"])
def test_an_unsubscribe_mailbox_that_would_break_the_header_is_refused(value: str) -> None:
    with pytest.raises(ConfigError, match="EMAIL_UNSUBSCRIBE_MAILTO"):
        monthly_settings("mongomock://x/y", "smtp://localhost:25", email_unsubscribe_mailto=value)


@pytest.mark.parametrize("value", ["", "  "])
def test_an_empty_unsubscribe_mailbox_is_no_mailbox(mongodb_uri: str, value: str) -> None:
    settings = monthly_settings(mongodb_uri, "smtp://localhost:25", email_unsubscribe_mailto=value)
    assert settings.email_unsubscribe_mailto is None

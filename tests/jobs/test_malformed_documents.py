"""A malformed document is isolated: the others in its chunk are written, it
is repaired where its broken part can be replaced, else counted and logged by
its id; it never fails a batch or stops a run."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import pytest

from formafriend_scheduler.clock import FrozenClock
from formafriend_scheduler.errors import ExitCode
from formafriend_scheduler.store import Store, connect
from formafriend_scheduler.store.base import WriteReport
from formafriend_scheduler.store.invitations import InvitationRepository
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
from tests.jobs.test_reminders import DAY, SENT, add_invitation, reminders_of, run_reminders
from tests.smtpserver import SmtpServer

EMAILS = [f"c{i:02d}@x.org" for i in range(20)]  # one chunk


@pytest.fixture
def setup(mongodb_uri: str, smtp_server: SmtpServer) -> tuple[Any, Store]:
    settings = monthly_settings(mongodb_uri, smtp_server.url)
    return settings, connect(settings)


def contact(store: Store, email: str) -> dict[str, Any]:
    found = store.db["contacts"].find_one({"email": email})
    assert found is not None
    return found


def test_a_null_tracking_on_an_invitation_or_a_contact_is_repaired_and_holds_back_nobody(
    setup: tuple[Any, Store], smtp_server: SmtpServer
) -> None:
    settings, store = setup
    alice = add_user(store)
    add_contacts(store, alice, *EMAILS[:3], {"email": EMAILS[3], "tracking": "str"}, *EMAILS[4:])
    # Given an invitation queued by an earlier run whose tracking the app nulled,
    queued = factories.invitation(
        alice["_id"], EMAILS[5], str(JANUARY), expires_at=SEND_MOMENT + 60 * DAY,
        status="queued", tracking=None, reminders=[],
    )  # fmt: skip
    store.db["invitations"].insert_one(queued)

    result = run_monthly(settings, store, at_send_moment())

    assert (result.status, result.exit_code) == ("success", ExitCode.OK)
    assert result.stats["sentInvitations"] == 20
    assert result.stats["repairedDocuments"] == 2
    invitations = invitations_of(store, alice)
    assert {doc["status"] for doc in invitations.values()} == {"sent"}
    assert invitations[EMAILS[5]]["tracking"]["sentAt"] == SEND_MOMENT
    assert contact(store, EMAILS[3])["tracking"]["invitationsSent"] == 1
    assert contact(store, EMAILS[4])["tracking"]["invitationsSent"] == 1
    assert run_monthly(settings, store, at_send_moment()).stats["sentInvitations"] == 0


def test_a_malformed_counter_is_repaired_and_logged_by_its_id(
    setup: tuple[Any, Store], smtp_server: SmtpServer, caplog: pytest.LogCaptureFixture
) -> None:
    settings, store = setup
    alice = add_user(store)
    broken = {"email": EMAILS[2], "tracking": {"invitationsSent": "three"}}
    add_contacts(store, alice, *EMAILS[:2], broken, *EMAILS[3:])
    bad = contact(store, EMAILS[2])

    with caplog.at_level(logging.WARNING, logger="formafriend_scheduler"):
        result = run_monthly(settings, store, at_send_moment())

    assert result.exit_code == ExitCode.OK
    assert (result.stats["sentInvitations"], result.stats["repairedDocuments"]) == (20, 1)
    assert all(contact(store, e)["tracking"]["invitationsSent"] == 1 for e in EMAILS)
    assert str(bad["_id"]) in caplog.text
    assert {doc["status"] for doc in invitations_of(store, alice).values()} == {"sent"}
    assert len(smtp_server.received) == 20


def test_a_reminder_to_an_invitation_whose_reminders_are_null_is_recorded(
    setup: tuple[Any, Store], smtp_server: SmtpServer
) -> None:
    settings, store = setup
    alice = add_user(store)
    add_contacts(store, alice, "bob@x.org", "carol@x.org")
    broken = add_invitation(store, alice, "bob@x.org", reminders=None, tracking={"sentAt": SENT})
    fine = add_invitation(store, alice, "carol@x.org")

    result = run_reminders(settings, store, FrozenClock(SENT + 3 * DAY))

    assert result.stats["firstRemindersSent"] == 2
    assert result.stats["repairedDocuments"] == 1
    assert reminders_of(store, broken) == reminders_of(store, fine) == ["first"]


def test_a_document_the_server_refuses_to_update_is_counted_logged_and_never_resent(
    setup: tuple[Any, Store],
    smtp_server: SmtpServer,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Given the server refuses the update of one invitation (say, a validator
    the app added), the others are marked sent; that one is counted and logged
    by its id, and the next run does not send it again (the outbox says sent)."""
    settings, store = setup
    alice = add_user(store)
    add_contacts(store, alice, *EMAILS[:5])
    refused: list[Any] = []
    real_mark_sent = InvitationRepository.mark_sent

    def refusing_one(self: Any, sent: list[Any], now: Any) -> WriteReport:
        first, rest = sent[0], sent[1:]
        refused.append(first[0]["_id"])
        report = real_mark_sent(self, rest, now)
        report.failed[first[0]["_id"]] = "Document failed validation"
        return report

    monkeypatch.setattr(InvitationRepository, "mark_sent", refusing_one)
    with caplog.at_level(logging.WARNING, logger="formafriend_scheduler"):
        first = run_monthly(settings, store, at_send_moment())
    monkeypatch.undo()
    second = run_monthly(settings, store, FrozenClock(SEND_MOMENT + timedelta(hours=1)))

    assert (first.exit_code, first.stats["sentInvitations"], first.stats["failedWrites"]) == (
        ExitCode.OK,
        5,
        1,
    )
    assert str(refused[0]) in caplog.text and "Document failed validation" in caplog.text
    assert second.stats["sentInvitations"] == 0 and second.stats["alreadySent"] == 1
    assert len(smtp_server.received) == 5  # never twice
    assert {doc["status"] for doc in invitations_of(store, alice).values()} == {"sent"}

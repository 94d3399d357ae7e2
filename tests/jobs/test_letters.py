"""From the app's documents to a Letter: a batch works out each sender's part once."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from formafriend_scheduler.eligibility import Defaults
from formafriend_scheduler.jobs import letters as letters_module
from formafriend_scheduler.jobs.letters import Letters, MalformedDocument, letter_for
from tests import factories

EXPIRES = datetime(2027, 1, 4, 17, 0, tzinfo=UTC)
DEFAULTS = Defaults(day=5, hour=18, timezone="Europe/Paris")


def sender(name: str, timezone: str) -> dict[str, Any]:
    return factories.user(
        email=f"{name.lower()}@example.org",
        profile={"firstName": name, "lastName": "Petit"},
        preferences={"timezone": timezone, "emailTemplate": "fun", "customMessage": "Hâte !"},
    )


def invitation(owner: dict[str, Any], to_email: str, **fields: Any) -> dict[str, Any]:
    fields.setdefault("metadata", {"template": "professional"})
    return factories.invitation(
        owner["_id"], to_email, fields.pop("month", "2026-11"), expires_at=EXPIRES, **fields
    )


def test_a_batch_writes_the_same_letters_as_one_at_a_time() -> None:
    lea, jules = sender("Léa", "Europe/Paris"), sender("Jules", "America/Montreal")
    contact = {"firstName": "Zoé", "lastName": "Dubois"}
    docs = [invitation(owner, f"c{i}@example.net") for i in range(3) for owner in (lea, jules)]
    owners = {lea["_id"]: lea, jules["_id"]: jules}
    batch = Letters(DEFAULTS)

    for doc in docs:
        owner = owners[doc["fromUserId"]]
        assert batch.letter("invitation", doc, owner, contact) == letter_for(
            "invitation", doc, owner, contact, DEFAULTS
        )
    letter = batch.letter("reminder-first", docs[1], jules, contact, days_left=3)
    assert (letter.sender_name, letter.sender_email) == ("Jules Petit", "jules@example.org")
    assert letter.timezone == ZoneInfo("America/Montreal")
    assert (letter.tone, letter.days_left) == ("professional", 3)  # the invitation's own template


def test_each_senders_part_is_worked_out_once_per_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    worked_out: list[Any] = []
    original = letters_module.sender_facts

    def counting(user: dict[str, Any], defaults: Defaults) -> letters_module.SenderFacts:
        worked_out.append(user.get("_id"))
        return original(user, defaults)

    monkeypatch.setattr(letters_module, "sender_facts", counting)
    lea, jules = sender("Léa", "Europe/Paris"), sender("Jules", "Europe/Paris")
    batch = Letters(DEFAULTS)
    for index in range(20):
        owner = lea if index % 2 else jules
        batch.letter("invitation", invitation(owner, f"c{index}@example.net"), owner, None)

    assert sorted(map(str, worked_out)) == sorted([str(lea["_id"]), str(jules["_id"])])


def test_a_missing_sender_takes_the_defaults_and_a_malformed_invitation_is_refused() -> None:
    owner = sender("Léa", "Asia/Tokyo")
    batch = Letters(DEFAULTS)

    letter = batch.letter("invitation", invitation(owner, "c@example.net"), None, None)
    assert (letter.sender_name, letter.sender_email) == ("", None)  # composed as "Un ami"
    assert letter.timezone == ZoneInfo("Europe/Paris")
    with pytest.raises(MalformedDocument, match="no valid toEmail"):
        batch.letter("invitation", invitation(owner, "c@example.net", toEmail="nope"), owner, None)
    with pytest.raises(MalformedDocument, match="month"):
        batch.letter("invitation", invitation(owner, "c@example.net", month="11/2026"), owner, None)


def test_each_letter_of_a_batch_has_its_invitations_own_month() -> None:
    owner = sender("Léa", "Europe/Paris")
    batch = Letters(DEFAULTS)
    months = ["2026-11", "2026-10", "2026-11", " 2026-10 "]
    letters = [
        batch.letter("reminder-first", invitation(owner, f"c{i}@example.net", month=m), owner, None)
        for i, m in enumerate(months)
    ]

    assert [(letter.month.year, letter.month.month) for letter in letters] == [
        (2026, 11),
        (2026, 10),
        (2026, 11),
        (2026, 10),
    ]
    with pytest.raises(MalformedDocument, match="month"):  # refused every time, not remembered
        batch.letter("invitation", invitation(owner, "c@example.net", month="2026-13"), owner, None)
    with pytest.raises(MalformedDocument, match="month"):
        batch.letter("invitation", invitation(owner, "d@example.net", month="2026-13"), owner, None)

"""The French e-mails: subjects, tones, links, dates, overrides, safety."""

from __future__ import annotations

from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from formafriend_scheduler.eligibility import Month
from formafriend_scheduler.mail.compose import Composer, Letter
from formafriend_scheduler.mail.text import body_text, french_date, header_text

NOW = datetime(2027, 1, 5, 17, 0, tzinfo=UTC)


def composer(templates_dir: Path | None = None, kind: type[Composer] = Composer) -> Composer:
    return kind(
        from_address="noreply@form-a-friend.com",
        from_name="Form-a-Friend",
        base_url="https://faf.example.org/",
        templates_dir=templates_dir,
    )


def compose(letter: Letter, templates_dir: Path | None = None) -> EmailMessage:
    composed = composer(templates_dir).compose(letter, NOW)
    parsed = message_from_bytes(composed.data, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def letter(**fields: Any) -> Letter:
    base: dict[str, Any] = {
        "kind": "invitation",
        "key": "6b0b00000000000000000001",
        "tone": "friendly",
        "month": Month(2027, 1),
        "token": "ab" * 32,
        "expires_at": datetime(2027, 3, 6, 17, 0, tzinfo=UTC),
        "timezone": ZoneInfo("Europe/Paris"),
        "sender_name": "Alice",
        "recipient_email": "bob@x.org",
    }
    return Letter(**{**base, **fields})


@pytest.mark.parametrize(
    ("kind", "subject"),
    [
        ("invitation", "Alice - Invitation pour janvier 2027"),
        ("reminder-first", "Alice - 1er rappel pour janvier 2027"),
        ("reminder-second", "Alice - 2ème rappel pour janvier 2027"),
    ],
)
def test_subjects_follow_the_app(kind: str, subject: str) -> None:
    assert compose(letter(kind=kind, days_left=5))["Subject"] == subject


@pytest.mark.parametrize(
    ("tone", "greeting", "button"),
    [
        ("friendly", "Bonjour Bob,", "Répondre au formulaire"),
        ("professional", "Bonjour Bob,", "Accéder au formulaire"),
        ("fun", "Coucou Bob !", "C'est parti"),
        ("unknown-tone", "Bonjour Bob,", "Répondre au formulaire"),
    ],
)
def test_three_tones_in_text_and_html(tone: str, greeting: str, button: str) -> None:
    message = compose(letter(tone=tone, recipient_first_name="Bob"))
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert greeting in text and greeting in html
    assert button in text or button in html


def test_without_a_first_name_the_greeting_is_plain() -> None:
    text = compose(letter()).get_body(("plain",)).get_content()
    assert text.startswith("Bonjour,")


def test_a_reminder_says_how_many_days_are_left() -> None:
    message = compose(letter(kind="reminder-first", days_left=1))
    assert "Il vous reste 1 jour pour y répondre" in message.get_body(("plain",)).get_content()
    message = compose(letter(kind="reminder-second", days_left=53))
    assert "53 jours" in message.get_body(("plain",)).get_content()


def test_links_headers_and_a_deterministic_message_id() -> None:
    message = compose(letter(sender_email="alice@x.org"))
    token = "ab" * 32
    assert message["Message-ID"] == "<6b0b00000000000000000001.invitation@form-a-friend.com>"
    assert message["List-Unsubscribe"] == f"<https://faf.example.org/unsubscribe?token={token}>"
    assert message["From"] == "Alice via Form-a-Friend <noreply@form-a-friend.com>"
    assert message["Reply-To"] == "Alice <alice@x.org>"
    assert message["Date"] == "Tue, 05 Jan 2027 17:00:00 +0000"
    html = message.get_body(("html",)).get_content()
    assert f'href="https://faf.example.org/form?token={token}"' in html


def test_the_custom_message_keeps_its_lines_and_is_escaped() -> None:
    message = compose(letter(custom_message="<b>Salut</b>\nà tous"))
    html = message.get_body(("html",)).get_content()
    text = message.get_body(("plain",)).get_content()
    assert "&lt;b&gt;Salut&lt;/b&gt;<br>\nà tous" in html
    assert "<b>Salut</b>\nà tous" in text


def test_a_templates_directory_overrides_single_templates(tmp_path: Path) -> None:
    (tmp_path / "invitation").mkdir()
    (tmp_path / "invitation" / "friendly.txt").write_text(
        "Coucou de {{ sender_name }} : {{ form_url }}"
    )
    message = compose(letter(), tmp_path)
    assert message.get_body(("plain",)).get_content().startswith("Coucou de Alice : https://")
    assert "Bonjour" in message.get_body(("html",)).get_content()  # still the packaged HTML


def test_header_text_removes_line_breaks_and_controls() -> None:
    assert header_text("Mal\r\nBcc: x@y\x00\tz") == "Mal Bcc: x@y z"
    assert header_text("a" * 300) == "a" * 100


def test_joiners_stay_and_bidi_overrides_go_in_headers_and_bodies() -> None:
    family, flag, persian = "👩\u200d👩\u200d👧", "🏳️\u200d🌈", "می\u200cخواهم"  # noqa: RUF001
    for text in (family, flag, persian):
        assert header_text(text) == text and body_text(text) == text
    assert header_text("abc\u202edef\u2066") == "abc def"
    assert body_text("abc\u202edef\u2066\nghi") == "abcdef\nghi"
    assert header_text("\u200d \u200c") == body_text("\u200d\n\u200c") == ""


def test_french_dates() -> None:
    assert french_date(datetime(2027, 1, 1)) == "1er janvier 2027"
    assert french_date(datetime(2027, 8, 15)) == "15 août 2027"

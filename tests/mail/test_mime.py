"""The MIME writer, checked by the standard library's parser."""

from __future__ import annotations

from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest

from formafriend_scheduler.mail.mime import address, encoded_words, multipart_alternative


def parse(data: bytes) -> EmailMessage:
    message = message_from_bytes(data, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


@pytest.mark.parametrize(
    "name",
    ["Alice", "Zoë", "Mal <script>", 'Bob "the" \\ guy', "é" * 80, "Hélène de la Tour du Pin " * 4],
)
def test_names_and_subjects_round_trip(name: str) -> None:
    data = multipart_alternative(
        [("Subject", encoded_words(name)), ("From", address(name, "a@x.org"))], "t", "<p>h</p>"
    )
    message = parse(data)
    assert message["Subject"] == name
    assert message["From"].addresses[0].display_name == name
    assert message["From"].addresses[0].addr_spec == "a@x.org"


def test_a_well_formed_alternative_with_crlf_and_short_header_lines() -> None:
    data = multipart_alternative(
        [("Subject", encoded_words("Réunion " * 20))],
        "Bonjour Léa\nà bientôt",
        "<p>Bonjour Léa</p>",
    )
    assert b"\n" not in data.replace(b"\r\n", b"")  # CRLF only
    head = data.split(b"\r\n\r\n", 1)[0]
    assert max(len(line) for line in head.split(b"\r\n")) <= 78
    message = parse(data)
    assert message.get_content_type() == "multipart/alternative"
    assert [part.get_content_type() for part in message.iter_parts()] == ["text/plain", "text/html"]
    assert message.get_body(("plain",)).get_content() == "Bonjour Léa\nà bientôt"
    assert message.get_body(("html",)).get_content() == "<p>Bonjour Léa</p>"
    assert all(not part.defects for part in message.walk())


def test_each_message_gets_its_own_boundary() -> None:
    first = parse(multipart_alternative([], "a", "b")).get_boundary()
    second = parse(multipart_alternative([], "a", "b")).get_boundary()
    assert first != second

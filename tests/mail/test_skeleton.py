"""Letters rendered once for many senders and filled in per message
(mail/skeleton.py): always the same bodies as rendering each message."""

from __future__ import annotations

import itertools
import re
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from formafriend_scheduler.mail.compose import TONES, Composer, Kind, Letter
from formafriend_scheduler.mail.skeleton import Bodies, Markers, opaque_slots
from tests.mail.test_compose import NOW, composer, letter

KINDS: tuple[Kind, ...] = ("invitation", "reminder-first", "reminder-second")
FIRST_NAMES = [None, "Léa", "  ", "<b>Zoé</b> & \"Jo\" 'x'", "Ana\r\nBcc: x@y", "👨‍👩‍👧 {0} {}"]
TOKENS = ["ab" * 32, "a&b<c>\"d'e", "é/ü?=&#", "{slot}"]
SENDERS = [("Alice", None), ("<i>Bob</i> & Co", "Un message\navec {deux} lignes & <b>"), ("", "")]


class RenderingEachMessage(Composer):
    """The composer as it was: both templates rendered for every message."""

    def _skeleton(self, letter: Letter, has_first_name: bool, shared: dict[str, object]) -> None:
        return None


class CountingRenders(Composer):
    """The composer, counting the renders of its sender parts."""

    renders = 0

    def _skeleton(
        self, letter: Letter, has_first_name: bool, shared: dict[str, object]
    ) -> Bodies | None:
        self.renders += 1
        return super()._skeleton(letter, has_first_name, shared)


def per_message(templates_dir: Path | None = None) -> Composer:
    return composer(templates_dir, RenderingEachMessage)


def wire(composer_: Composer, letter_: Letter) -> bytes:
    """The message as sent, but for its random MIME boundary."""
    return re.sub(rb"=_faf_[0-9a-f]+", b"=_faf_", composer_.compose(letter_, NOW).data)


def bodies(composer_: Composer, letter_: Letter) -> tuple[str, str]:
    message = message_from_bytes(composer_.compose(letter_, NOW).data, policy=policy.default)
    assert isinstance(message, EmailMessage)
    text, html = (message.get_body((kind,)) for kind in ("plain", "html"))
    assert text is not None and html is not None
    return text.get_content(), html.get_content()


def test_every_kind_tone_sender_and_recipient_gets_the_bodies_of_its_own_render() -> None:
    # One composer for all: its cache of sender parts is shared, so a key
    # that missed a difference would hand one letter another's bodies.
    shared = composer()
    cases = itertools.product(KINDS, (*TONES, "unknown"), SENDERS, FIRST_NAMES, TOKENS)
    for kind, tone, (sender, custom), first_name, token in cases:
        letter_ = letter(
            kind=kind,
            tone=tone,
            sender_name=sender,
            custom_message=custom,
            recipient_first_name=first_name,
            token=token,
            days_left=1 if token == TOKENS[0] else 12,
        )
        assert wire(shared, letter_) == wire(per_message(), letter_), (
            kind,
            tone,
            sender,
            first_name,
            token,
        )


def test_letters_of_one_sender_differ_by_recipient_name_and_token() -> None:
    shared = composer()
    first = bodies(shared, letter(recipient_first_name="Léa", token="1" * 64))
    second = bodies(shared, letter(recipient_first_name="Zoé", token="2" * 64))
    assert "Léa" in first[0] and "1" * 64 in first[1]
    assert "Zoé" in second[0] and "2" * 64 in second[1]
    assert "Léa" not in second[0] + second[1] and "1" * 64 not in second[0] + second[1]


def test_the_expiry_month_and_days_left_are_each_letters_own() -> None:
    shared = composer()
    base = datetime(2027, 3, 6, 17, 0, tzinfo=UTC)
    for days in range(3):
        letter_ = letter(
            kind="reminder-first", expires_at=base + timedelta(days=days), days_left=days
        )
        assert wire(shared, letter_) == wire(per_message(), letter_)
        assert f"reste {days} jour" in bodies(shared, letter_)[0]


def test_one_expiry_instant_shows_each_senders_own_date() -> None:
    # 23:30 UTC on 6 March is already 7 March in Paris: the bodies found for
    # one letter's raw values must not serve a sender in another timezone.
    shared = composer()
    late = datetime(2027, 3, 6, 23, 30, tzinfo=UTC)
    in_london = letter(expires_at=late, timezone=ZoneInfo("Europe/London"))
    in_paris = letter(expires_at=late, timezone=ZoneInfo("Europe/Paris"))
    assert "6 mars 2027" in bodies(shared, in_london)[0]
    assert "7 mars 2027" in bodies(shared, in_paris)[0]
    assert wire(shared, in_london) == wire(per_message(), in_london)


def test_a_senders_letters_of_one_batch_are_rendered_once() -> None:
    counting = composer(kind=CountingRenders)
    assert isinstance(counting, CountingRenders)
    for number in range(20):
        recipient = letter(token=f"{number:064x}", recipient_first_name=f"Ami {number}")
        assert wire(counting, recipient) == wire(per_message(), recipient)
    assert counting.renders == 1


def test_reminders_of_one_sender_that_show_the_same_expiry_date_are_rendered_once() -> None:
    counting = composer(kind=CountingRenders)
    assert isinstance(counting, CountingRenders)
    base = datetime(2027, 3, 6, 17, 0, tzinfo=UTC)  # 18:00 in Paris
    for hours in range(6):  # until 23:59 in Paris: the same date
        letter_ = letter(
            kind="reminder-first", expires_at=base + timedelta(hours=hours, minutes=59)
        )
        assert wire(counting, letter_) == wire(per_message(), letter_)
    assert counting.renders == 1
    next_day = letter(kind="reminder-first", expires_at=base + timedelta(hours=6))  # 00:00
    assert wire(counting, next_day) == wire(per_message(), next_day)
    assert counting.renders == 2


def test_letters_of_several_senders_share_one_rendering_and_keep_their_names() -> None:
    counting = composer(kind=CountingRenders)
    assert isinstance(counting, CountingRenders)
    for sender in ("Alice", "<i>Bob</i> & Co", "", "Zoé {0}"):
        letter_ = letter(kind="reminder-first", sender_name=sender, days_left=3)
        assert wire(counting, letter_) == wire(per_message(), letter_)
    assert counting.renders == 1


def _override(tmp_path: Path, body: str, name: str = "invitation/friendly.txt") -> Composer:
    (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / name).write_text(body, encoding="utf-8")
    return composer(tmp_path)


@pytest.mark.parametrize(
    "body",
    [
        "{{ first_name }} {{ form_url }} {{ unsubscribe_url }}",
        "{{ first_name|e }} {{ first_name|safe }} {{ form_url|string }} {{ unsubscribe_url }}",
        "{% if not first_name %}Bonjour{% else %}{{ 'Cher ' ~ first_name }}{% endif %} "
        "{{ first_name or 'ami' }} {{ form_url }} {{ unsubscribe_url }}",
        "{% if first_name and custom_message %}{{ first_name }}{% endif %}"
        "{{ form_url if first_name else unsubscribe_url }} {{ form_url }} {{ unsubscribe_url }}",
    ],
)
def test_an_override_that_prints_and_tests_the_slots_is_filled_in(
    tmp_path: Path, body: str
) -> None:
    override = _override(tmp_path, body)
    assert opaque_slots(override._env, "invitation/friendly.txt")
    for first_name, token in itertools.product(FIRST_NAMES, TOKENS):
        letter_ = letter(recipient_first_name=first_name, token=token, custom_message="Hé")
        assert wire(override, letter_) == wire(per_message(tmp_path), letter_)


@pytest.mark.parametrize(
    "body",
    [
        "{{ first_name|upper }}",
        "{{ first_name|truncate(3) }}",
        "{% if first_name == 'Léa' %}Léa !{% endif %}",
        "{% if first_name|length > 3 %}long{% endif %}",
        "{{ form_url[:30] }}",
        "{% set greeting = 'Bonjour ' ~ first_name %}{{ greeting }}",
        "{% filter upper %}{{ first_name }}{% endfilter %}",
        "{% for letter in first_name %}{{ letter }}{% endfor %}",
        "{% macro hello(name) %}{{ name }}{% endmacro %}{{ hello(first_name) }}",
        "{{ first_name.title() }}",
        "{{ first_name is none }}",
    ],
)
def test_an_override_that_looks_into_a_slot_is_rendered_for_each_message(
    tmp_path: Path, body: str
) -> None:
    full = body + " {{ form_url }} {{ unsubscribe_url }}"
    override = _override(tmp_path, full)
    assert not opaque_slots(override._env, "invitation/friendly.txt")
    for first_name in ("Léa", "Jo", "<i>Ana</i>", None):
        letter_ = letter(recipient_first_name=first_name)
        try:
            expected = wire(per_message(tmp_path), letter_)
        except Exception:  # a template that fails for this name fails composing too
            with pytest.raises(Exception):  # noqa: B017
                wire(override, letter_)
            continue
        assert wire(override, letter_) == expected


def test_a_layout_chosen_at_render_time_is_rendered_for_each_message(tmp_path: Path) -> None:
    override = _override(
        tmp_path,
        '{% extends "lay" ~ "out.html" %}{% block body %}{{ first_name }}{% endblock %}',
        "invitation/friendly.html",
    )
    assert not opaque_slots(override._env, "invitation/friendly.html")
    assert opaque_slots(composer()._env, "invitation/friendly.html")  # the packaged one


def test_a_layout_that_looks_into_a_slot_makes_its_templates_render_each_message(
    tmp_path: Path,
) -> None:
    (tmp_path / "layout.html").write_text(
        "{{ first_name|upper }}{% block body %}{% endblock %}{{ form_url }}", encoding="utf-8"
    )
    assert not opaque_slots(composer(tmp_path)._env, "invitation/fun.html")


def test_a_marker_that_did_not_come_out_whole_is_refused() -> None:
    markers = Markers()
    first, form, *_ = markers.values
    assert markers.format_string(f"a {first} b {form.replace('<', '&lt;')} {{c}}") == (
        "a {0} b {3} {{c}}"
    )
    assert markers.format_string(f"a {first.upper()}") is None
    assert markers.format_string(f"a {first[:5]}") is None

"""Building the French invitation and reminder e-mails from templates.

Templates are files (jinja2, HTML autoescaped) under `mail/templates/`; a
directory named by SCHEDULER_EMAIL_TEMPLATES_DIR overrides any of them by
path (for example `invitation/friendly.html`).
"""

from __future__ import annotations

import importlib.resources
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Literal, TypeVar
from urllib.parse import quote
from zoneinfo import ZoneInfo

from jinja2 import (
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    StrictUndefined,
    select_autoescape,
)
from markupsafe import Markup, escape

from formafriend_scheduler.eligibility import Month
from formafriend_scheduler.mail.mime import CRLF, address, encoded_words, multipart_alternative
from formafriend_scheduler.mail.skeleton import Bodies, Markers, opaque_slots
from formafriend_scheduler.mail.text import body_text, french_date, header_text

Kind = Literal["invitation", "reminder-first", "reminder-second"]
TONES = ("friendly", "professional", "fun")
DEFAULT_TONE = "friendly"
SUBJECTS: dict[str, str] = {
    "invitation": "{sender} - Invitation pour {month}",
    "reminder-first": "{sender} - 1er rappel pour {month}",
    "reminder-second": "{sender} - 2ème rappel pour {month}",
}


@dataclass(frozen=True)
class ComposedEmail:
    """A message ready for the wire: envelope and RFC 5322 bytes."""

    envelope_from: str
    recipient: str
    message_id: str
    data: bytes


@dataclass(frozen=True)
class Letter:
    """Everything one e-mail says. Names and the custom message are untrusted."""

    kind: Kind
    key: str  # the invitation id: makes the Message-ID deterministic
    tone: str
    month: Month
    token: str
    expires_at: datetime
    timezone: ZoneInfo
    sender_name: str
    recipient_email: str
    sender_email: str | None = None
    recipient_first_name: str | None = None
    recipient_last_name: str | None = None
    custom_message: str | None = None
    days_left: int | None = None


def _nl2br(value: str) -> Markup:
    return Markup("<br>\n").join(escape(line) for line in value.split("\n"))


@dataclass(frozen=True)
class _SenderPart:
    """The headers that name the sender, shared by the messages of one
    sender's letters of one kind and month (Composer._sender_part)."""

    subject: str
    from_header: str
    reply_to: str | None


# Sender parts and bodies kept per composer: a batch has a few dozen senders;
# the caps only bound a long run's memory (bodies are about 7 KB a pair).
SENDER_PARTS_KEPT = 256
BODIES_KEPT = 64
LETTER_BODIES_KEPT = 256


class Composer:
    def __init__(
        self,
        *,
        from_address: str,
        from_name: str,
        base_url: str,
        templates_dir: Path | None = None,
        one_click_unsubscribe: bool = True,
        unsubscribe_mailto: str | None = None,
    ) -> None:
        self._from_address = from_address
        # RFC 8058: one-click only for an HTTPS link (mail providers POST
        # `List-Unsubscribe=One-Click` to it, without cookies or redirects).
        self._one_click = one_click_unsubscribe and base_url.lower().startswith("https://")
        self._unsubscribe_mailto = unsubscribe_mailto
        self._from_name = header_text(from_name)
        self._base_url = base_url.rstrip("/")
        self._domain = from_address.rsplit("@", 1)[-1]
        packaged = importlib.resources.files("formafriend_scheduler.mail") / "templates"
        loaders = [FileSystemLoader(str(packaged))]
        if templates_dir is not None:
            loaders.insert(0, FileSystemLoader(str(templates_dir)))
        self._env = Environment(
            loader=ChoiceLoader(loaders),
            autoescape=select_autoescape(enabled_extensions=("html",), default=False),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            # A run reads its templates once: no stat() of every template
            # file for every message to see whether it changed meanwhile.
            auto_reload=False,
        )
        self._env.filters["nl2br"] = _nl2br
        self._markers = Markers()
        self._opaque: dict[tuple[str, str], bool] = {}
        self._sender_parts: dict[tuple[object, ...], _SenderPart] = {}
        self._bodies: dict[tuple[object, ...], Bodies | None] = {}
        self._bodies_by_letter: dict[tuple[object, ...], tuple[Bodies | None, str]] = {}
        self._date: tuple[object, str] = (None, "")

    def form_url(self, token: str) -> str:
        return f"{self._base_url}/form?token={_quoted(token)}"

    def unsubscribe_url(self, token: str) -> str:
        return f"{self._base_url}/unsubscribe?token={_quoted(token)}"

    def list_unsubscribe(self, token: str) -> list[tuple[str, str]]:
        """RFC 2369 `List-Unsubscribe` (the HTTPS link, then the mailbox when
        one is configured) and RFC 8058's `List-Unsubscribe-Post`."""
        links = [f"<{self.unsubscribe_url(token)}>"]
        if self._unsubscribe_mailto:
            subject = quote(f"unsubscribe {token}")
            mailbox = quote(self._unsubscribe_mailto, safe="@")
            links.append(f"<mailto:{mailbox}?subject={subject}>")
        headers = [("List-Unsubscribe", ("," + CRLF + " ").join(links))]
        if self._one_click:
            headers.append(("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"))
        return headers

    def message_id(self, letter: Letter) -> str:
        return f"<{header_text(letter.key, 64)}.{letter.kind}@{self._domain}>"

    @staticmethod
    def tone_of(letter: Letter) -> str:
        """The tone the letter is written in: an unknown one is the default."""
        return letter.tone if letter.tone in TONES else DEFAULT_TONE

    def template_names(self, letter: Letter) -> tuple[str, str]:
        """The text and HTML templates this letter is written with."""
        tone = self.tone_of(letter)
        family = "invitation" if letter.kind == "invitation" else "reminder"
        return f"{family}/{tone}.txt", f"{family}/{tone}.html"

    def render(self, letter: Letter) -> tuple[str, str]:
        """The text and HTML bodies (a template error propagates: jinja2's)."""
        context = self._context(letter)
        text_name, html_name = self.template_names(letter)
        text = self._env.get_template(text_name).render(context)
        html = self._env.get_template(html_name).render(context)
        return text, html

    def render_one(self, letter: Letter, name: str) -> str:
        """One template (`invitation/fun.txt`) rendered for this letter."""
        return self._env.get_template(name).render(self._context(letter))

    def _context(self, letter: Letter) -> dict[str, object]:
        return {
            **self._shared_context(letter),
            "first_name": header_text(letter.recipient_first_name) or None,
            "form_url": self.form_url(letter.token),
            "unsubscribe_url": self.unsubscribe_url(letter.token),
        }

    @staticmethod
    def _shared_context(letter: Letter) -> dict[str, object]:
        """What the letters of one sender, kind and month share (all but the slots)."""
        return {
            "sender_name": header_text(letter.sender_name) or "Un ami",
            "custom_message": body_text(letter.custom_message) or None,
            "expires_on": french_date(letter.expires_at.astimezone(letter.timezone)),
            "month_label": letter.month.label,
            "days_left": letter.days_left,
            "reminder_number": "1er" if letter.kind == "reminder-first" else "2ème",
        }

    def _sender_part(self, letter: Letter) -> _SenderPart:
        key = (letter.kind, letter.sender_name, letter.sender_email, letter.month)
        return _kept(
            self._sender_parts, key, SENDER_PARTS_KEPT, lambda: self._new_sender_part(letter)
        )

    def _new_sender_part(self, letter: Letter) -> _SenderPart:
        sender = header_text(letter.sender_name) or "Un ami"
        reply_to = None
        if letter.sender_email and "@" in letter.sender_email:
            reply_to = address(sender, header_text(letter.sender_email, 254))
        return _SenderPart(
            subject=encoded_words(
                SUBJECTS[letter.kind].format(sender=sender, month=letter.month.label)
            ),
            from_header=address(f"{sender} via {self._from_name}", self._from_address),
            reply_to=reply_to,
        )

    def _bodies_for(self, letter: Letter, has_first_name: bool) -> tuple[Bodies | None, str]:
        """The letter's bodies with a field per slot, or None when they are
        rendered for each message; and the sender's name as the templates see it.

        Found first by the letter's raw values: a sender's invitations of one
        batch share them all (created at one instant), so what the templates
        are given is worked out once per sender, not per message.
        """
        raw = (
            letter.kind,
            letter.tone,
            has_first_name,
            letter.sender_name,
            letter.custom_message,
            letter.expires_at,
            letter.timezone,
            letter.month,
            letter.days_left,
        )
        return _kept(
            self._bodies_by_letter,
            raw,
            LETTER_BODIES_KEPT,
            lambda: self._bodies_by_context(letter, has_first_name),
        )

    def _bodies_by_context(self, letter: Letter, has_first_name: bool) -> tuple[Bodies | None, str]:
        """Keyed by what the templates are given (the sender's name aside: a
        slot), not by the letter's raw values: reminders expire at instants a
        few days apart but on dates the letter shows alike."""
        shared = self._shared_context(letter)
        sender = str(shared.pop("sender_name"))
        key = (letter.kind, letter.tone, has_first_name, *shared.values())
        bodies = _kept(
            self._bodies, key, BODIES_KEPT, lambda: self._skeleton(letter, has_first_name, shared)
        )
        return bodies, sender

    def _skeleton(
        self, letter: Letter, has_first_name: bool, shared: dict[str, object]
    ) -> Bodies | None:
        """The letter's bodies with a field per slot (mail/skeleton.py), or
        None when its templates do not treat the slots as opaque."""
        names = self.template_names(letter)
        if names not in self._opaque:
            self._opaque[names] = all(opaque_slots(self._env, name) for name in names)
        if not self._opaque[names]:
            return None
        first_name, form_url, unsubscribe_url, sender_name = self._markers.values
        context = {
            **shared,
            "sender_name": sender_name,
            "first_name": first_name if has_first_name else None,
            "form_url": form_url,
            "unsubscribe_url": unsubscribe_url,
        }
        text, html = (self._env.get_template(name).render(context) for name in names)
        text_form, html_form = (self._markers.format_string(body) for body in (text, html))
        if text_form is None or html_form is None:
            self._opaque[names] = False  # a marker did not come out whole
            return None
        return Bodies(text_form, html_form)

    def _date_header(self, now: datetime) -> str:
        """RFC 5322's date, to the second: formatted once per second."""
        second = (now.timestamp() // 1, now.utcoffset())
        if self._date[0] != second:
            self._date = (second, format_datetime(now))
        return self._date[1]

    def compose(self, letter: Letter, now: datetime) -> ComposedEmail:
        message_id = self.message_id(letter)
        first_name = header_text(letter.recipient_first_name) or None
        part = self._sender_part(letter)
        bodies, sender = self._bodies_for(letter, first_name is not None)
        if bodies is None:
            text, html = self.render(letter)
        else:
            token = letter.token
            slots = (first_name, self.form_url(token), self.unsubscribe_url(token), sender)
            text, html = bodies.fill(slots)

        recipient_name = header_text(
            " ".join(n for n in (letter.recipient_first_name, letter.recipient_last_name) if n)
        )
        headers = [
            ("Subject", part.subject),
            ("From", part.from_header),
            ("To", address(recipient_name, letter.recipient_email)),
        ]
        if part.reply_to is not None:
            headers.append(("Reply-To", part.reply_to))
        headers += [
            ("Date", self._date_header(now)),
            ("Message-ID", message_id),
            *self.list_unsubscribe(letter.token),
            ("X-Form-A-Friend-Kind", letter.kind),
        ]
        return ComposedEmail(
            envelope_from=self._from_address,
            recipient=letter.recipient_email,
            message_id=message_id,
            data=multipart_alternative(headers, text, html),
        )


_K = TypeVar("_K")
_V = TypeVar("_V")


def _kept(cache: dict[_K, _V], key: _K, cap: int, make: Callable[[], _V]) -> _V:
    """`cache[key]`, made when missing; a full cache is emptied first (a
    batch's senders fit many times over; the cap only bounds a long run)."""
    if key in cache:
        return cache[key]
    if len(cache) >= cap:
        cache.clear()
    value = cache[key] = make()
    return value


def _quoted(token: str) -> str:
    """The token in a URL: a token of letters and digits as it is (every
    token the app makes: 64 hex digits), anything else percent-encoded."""
    return token if token.isascii() and token.isalnum() else quote(token)

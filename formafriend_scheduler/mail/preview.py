"""What a message will look like, before anyone receives it: sample letters,
the message's parts as files, and a check of an override templates directory.

Nothing here sends or touches the database: `preview` and `config check`
build on it (cli/preview.py, cli/config_cmd.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from zoneinfo import ZoneInfo

from jinja2 import TemplateError, TemplateSyntaxError

from formafriend_scheduler.eligibility import Month
from formafriend_scheduler.mail.compose import TONES, ComposedEmail, Composer, Kind, Letter

KINDS: tuple[Kind, ...] = ("invitation", "reminder-first", "reminder-second")
SAMPLE_TOKEN = "5a3f" * 16  # 64 hex characters, as the app's tokens
DAYS_LEFT = {"reminder-first": 57, "reminder-second": 53}
_HREF = re.compile(r"""href\s*=\s*["']([^"']+)["']""", re.IGNORECASE)


def sample_letter(kind: Kind, tone: str, now: datetime, zone: ZoneInfo) -> Letter:
    """A letter with the sample values preview and the template check use."""
    return Letter(
        kind=kind,
        key="sample-" + kind,
        tone=tone,
        month=Month.containing(now, zone),
        token=SAMPLE_TOKEN,
        expires_at=now + timedelta(days=60),
        timezone=zone,
        sender_name="Camille Martin",
        sender_email="camille.martin@example.org",
        recipient_email="lea.dubois@example.net",
        recipient_first_name="Léa",
        recipient_last_name="Dubois",
        custom_message="Hâte de lire tes nouvelles !\nÀ très vite.",
        days_left=DAYS_LEFT.get(kind),
    )


@dataclass(frozen=True)
class Preview:
    """A composed message, parsed back: what a summary and the files show."""

    letter: Letter
    composed: ComposedEmail
    message: EmailMessage
    text: str
    html: str

    @classmethod
    def of(cls, composer: Composer, letter: Letter, now: datetime) -> Preview:
        composed = composer.compose(letter, now)
        message = message_from_bytes(composed.data, policy=policy.default)
        assert isinstance(message, EmailMessage)
        text = message.get_body(("plain",))
        html = message.get_body(("html",))
        return cls(
            letter,
            composed,
            message,
            text.get_content() if text is not None else "",
            html.get_content() if html is not None else "",
        )

    @property
    def links(self) -> list[str]:
        """Every link of the HTML part, once each."""
        return sorted(set(_HREF.findall(self.html)))

    def headers(self) -> dict[str, str]:
        names = ("Subject", "From", "To", "Reply-To", "List-Unsubscribe", "List-Unsubscribe-Post")
        return {name: str(self.message[name]) for name in names if self.message[name]}

    def summary(self) -> dict[str, str | int | list[str]]:
        return {
            "kind": self.letter.kind,
            "tone": self.letter.tone,
            **self.headers(),
            "links": self.links,
            "bytes": len(self.composed.data),
        }

    def write(self, folder: Path) -> list[Path]:
        """`<kind>-<tone>.eml`, `.html` and `.txt` in `folder` (created)."""
        folder.mkdir(parents=True, exist_ok=True)
        stem = f"{self.letter.kind}-{self.letter.tone}"
        files = {
            folder / f"{stem}.eml": self.composed.data,
            folder / f"{stem}.html": self.html.encode("utf-8"),
            folder / f"{stem}.txt": self.text.encode("utf-8"),
        }
        for path, data in files.items():
            path.write_bytes(data)
        return list(files)


@dataclass(frozen=True)
class TemplateProblem:
    file: Path
    problem: str

    def __str__(self) -> str:
        return f"{self.file}: {self.problem}"


def check_templates(
    composer: Composer, templates_dir: Path, now: datetime
) -> list[TemplateProblem]:
    """Every message kind and tone rendered with the sample values through the
    override directory: a template that fails to render, or whose output
    lacks the form link or the unsubscribe link, is a problem naming the
    overriding file (the packaged templates are tested with the package)."""
    problems: dict[tuple[Path, str], TemplateProblem] = {}

    def blame(name: str, problem: str) -> None:
        # The file the operator wrote: the template itself, else the layout.
        candidates = [name, "layout.html"] if name.endswith(".html") else [name]
        overridden = [templates_dir / c for c in candidates if (templates_dir / c).is_file()]
        file = overridden[0] if overridden else templates_dir / name
        problems.setdefault((file, problem), TemplateProblem(file, problem))

    for kind in KINDS:
        for tone in TONES:
            letter = sample_letter(kind, tone, now, ZoneInfo("Europe/Paris"))
            text_name, html_name = composer.template_names(letter)
            try:
                text, html = composer.render(letter)
            except TemplateSyntaxError as error:
                file = Path(error.filename) if error.filename else templates_dir / text_name
                where = f"line {error.lineno}: " if error.lineno else ""
                key = (file, f"{where}{error.message}")
                problems.setdefault(key, TemplateProblem(file, f"{where}{error.message}"))
                continue
            except TemplateError as error:
                name = text_name if _fails(composer, letter, text_name) else html_name
                blame(name, f"does not render ({type(error).__name__}: {error})")
                continue
            links = {
                "form link ({{ form_url }})": composer.form_url(SAMPLE_TOKEN),
                "unsubscribe link ({{ unsubscribe_url }})": composer.unsubscribe_url(SAMPLE_TOKEN),
            }
            for body, name in ((text, text_name), (html, html_name)):
                for what, url in links.items():
                    if url not in body:
                        blame(name, f"the rendered message lacks the {what}")
    return list(problems.values())


def _fails(composer: Composer, letter: Letter, name: str) -> bool:
    try:
        composer.render_one(letter, name)
    except TemplateError:
        return True
    return False

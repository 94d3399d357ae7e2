"""What a message will look like, before anyone receives it: sample letters,
the message's parts as files, and a check of an override templates directory.

Nothing here sends or touches the database: `preview` and `config check`
build on it (cli/preview.py, cli/config_cmd.py).
"""

from __future__ import annotations

import re
import traceback
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from zoneinfo import ZoneInfo

from jinja2 import TemplateSyntaxError

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
    tone: str  # the tone rendered (an unknown one in the data is friendly)
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
            composer.tone_of(letter),
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
            "tone": self.tone,
            **self.headers(),
            "links": self.links,
            "bytes": len(self.composed.data),
        }

    def write(self, folder: Path) -> list[Path]:
        """`<kind>-<tone>.eml`, `.html` and `.txt` in `folder` (created)."""
        folder.mkdir(parents=True, exist_ok=True)
        stem = f"{self.letter.kind}-{self.tone}"
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


TEMPLATE_FOLDERS = ("invitation", "reminder")


def check_templates(
    composer: Composer, templates_dir: Path, now: datetime
) -> list[TemplateProblem]:
    """Every message kind and tone rendered through the override directory,
    with the sample values and with the least a letter can have (no names,
    no custom message): a template that fails to render, or whose output
    lacks the form link or the unsubscribe link, is a problem naming the
    overriding file; so is a file in invitation/ or reminder/ that no kind
    and tone would ever use (a misspelt name is otherwise silently ignored).
    The packaged templates are tested with the package."""
    problems: dict[tuple[Path, str], TemplateProblem] = {}

    def add(file: Path, problem: str) -> None:
        problems.setdefault((file, problem), TemplateProblem(file, problem))

    for path in _unused_files(templates_dir):
        add(path, "no message uses this file (expected invitation/ or reminder/ with "
                  f"{', '.join(f'{tone}.html' for tone in TONES)} or .txt)")  # fmt: skip
    links = {
        "form link ({{ form_url }})": ("form_url", composer.form_url(SAMPLE_TOKEN)),
        "unsubscribe link ({{ unsubscribe_url }})": (
            "unsubscribe_url",
            composer.unsubscribe_url(SAMPLE_TOKEN),
        ),
    }
    for letter in _letters_to_check(now):
        text_name, html_name = composer.template_names(letter)
        for name in (text_name, html_name):
            try:
                body = composer.render_one(letter, name)
            except TemplateSyntaxError as error:
                file = Path(error.filename) if error.filename else templates_dir / name
                add(file, f"line {error.lineno}: {error.message}")
                continue
            except Exception as error:  # any failure of an operator's template
                failure = f"{type(error).__name__}: {error}"
                add(_failing_file(error, templates_dir, name),
                    f"does not render for {_who(letter)} ({failure})")  # fmt: skip
                continue
            for what, (variable, url) in links.items():
                if url not in body:
                    add(_lacking_file(templates_dir, name, variable), f"the rendered message "
                        f"lacks the {what}")  # fmt: skip
    return list(problems.values())


def _letters_to_check(now: datetime) -> list[Letter]:
    """Each kind and tone with the sample values, and with no names and no
    custom message (what a template must also survive)."""
    letters = []
    for kind in KINDS:
        for tone in TONES:
            full = sample_letter(kind, tone, now, ZoneInfo("Europe/Paris"))
            bare = replace(
                full,
                sender_name="",
                sender_email=None,
                recipient_first_name=None,
                recipient_last_name=None,
                custom_message=None,
            )
            letters += [full, bare]
    return letters


def _who(letter: Letter) -> str:
    return (
        "a contact with a first name"
        if letter.recipient_first_name
        else ("a contact without a name or custom message")
    )


def _unused_files(templates_dir: Path) -> list[Path]:
    used = {f"{tone}.{ext}" for tone in TONES for ext in ("html", "txt")}
    return sorted(
        path
        for folder in TEMPLATE_FOLDERS
        if (templates_dir / folder).is_dir()
        for path in (templates_dir / folder).iterdir()
        if path.is_file() and path.name not in used
    )


def _failing_file(error: BaseException, templates_dir: Path, name: str) -> Path:
    """The operator's file in the traceback (jinja2 puts each template's own
    frames there), else the override of the template rendered."""
    root = templates_dir.resolve()
    for frame in reversed(traceback.extract_tb(error.__traceback__)):
        path = Path(frame.filename).resolve()
        if path.is_relative_to(root) and path.is_file():
            return templates_dir / path.relative_to(root)
    return templates_dir / name


def _lacking_file(templates_dir: Path, name: str, variable: str) -> Path:
    """Where a link is missing: the override of the template, unless it
    extends an overridden layout and the layout is the one without it."""
    own, layout = templates_dir / name, templates_dir / "layout.html"
    if not own.is_file():
        return layout if name.endswith(".html") and layout.is_file() else own
    source = own.read_text(encoding="utf-8", errors="replace")
    if variable not in source and "extends" in source and layout.is_file():
        layout_source = layout.read_text(encoding="utf-8", errors="replace")
        return own if variable in layout_source else layout
    return own

"""preview: the message that would go out, as files and a summary; nothing
sent, nothing written to the database; a broken override template named."""

from __future__ import annotations

import json
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from formafriend_scheduler.cli.app import app
from formafriend_scheduler.cli.state import AppState
from formafriend_scheduler.clock import FrozenClock
from formafriend_scheduler.config import load_settings
from formafriend_scheduler.store import Store, connect
from tests import factories
from tests.jobs.monthly_helpers import SEND_MOMENT
from tests.smtpserver import SmtpServer

pytestmark = pytest.mark.usefixtures("env_database")
LAYOUT_WITHOUT_FOOTER = "<html><body>{% block content %}{% endblock %}</body></html>"


def invoke(cli: CliRunner, *arguments: str) -> tuple[int, str, str]:
    result = cli.invoke(app, list(arguments), obj=AppState(clock=FrozenClock(SEND_MOMENT)))
    return result.exit_code, result.stdout, result.stderr


def database(mongodb_uri: str) -> Store:
    return connect(load_settings(mongodb_uri=mongodb_uri))


def snapshot(store: Store) -> dict[str, list[dict[str, Any]]]:
    """Every document of every collection: what "nothing written" is checked against."""
    db = store.db
    return {
        name: sorted(db[name].find(), key=lambda doc: str(doc["_id"]))
        for name in db.list_collection_names()
    }


@pytest.mark.parametrize(
    ("kind", "subject"),
    [
        ("invitation", "Camille Martin - Invitation pour janvier 2027"),
        ("reminder-first", "Camille Martin - 1er rappel pour janvier 2027"),
        ("reminder-second", "Camille Martin - 2ème rappel pour janvier 2027"),
    ],
)
def test_each_kind_is_written_as_eml_html_and_text_with_a_summary(
    cli: CliRunner, tmp_path: Path, kind: str, subject: str
) -> None:
    code, out, err = invoke(cli, "preview", kind, "--out", str(tmp_path), "--json")

    assert code == 0, err
    summary = json.loads(out)
    assert summary["Subject"] == subject and summary["To"] == "Léa Dubois <lea.dubois@example.net>"
    assert summary["kind"] == kind and summary["tone"] == "friendly"
    eml, html, text = (tmp_path / f"{kind}-friendly.{ext}" for ext in ("eml", "html", "txt"))
    assert [str(p) for p in (eml, html, text)] == summary["files"]
    message = message_from_bytes(eml.read_bytes(), policy=policy.default)
    assert message["Subject"] == subject and summary["bytes"] == len(eml.read_bytes())
    form = "http://localhost:3000/form?token=" + "5a3f" * 16
    assert form in summary["links"] and form in html.read_text() and form in text.read_text()
    assert "<html" in html.read_text().lower() and "<html" not in text.read_text().lower()


def test_the_terminal_summary_names_subject_sender_recipient_links_and_size(
    cli: CliRunner, tmp_path: Path
) -> None:
    code, out, _ = invoke(cli, "preview", "invitation", "--tone", "fun", "--out", str(tmp_path))

    assert code == 0
    for shown in ("Subject", "From", "To", "link", "size", "invitation-fun.eml", "nothing sent"):
        assert shown in out


@pytest.mark.parametrize("invited", [True, False], ids=["invited", "not-yet-invited"])
def test_a_users_real_message_comes_from_the_database_which_is_left_as_it_was(
    cli: CliRunner, tmp_path: Path, mongodb_uri: str, smtp_server: SmtpServer,
    monkeypatch: pytest.MonkeyPatch, invited: bool,
) -> None:  # fmt: skip
    monkeypatch.setenv("EMAIL_TRANSPORT", "smtp")
    monkeypatch.setenv("SMTP_URL", smtp_server.url)
    store = database(mongodb_uri)
    alice = factories.user(profile={"firstName": "Alice"}, preferences={"emailTemplate": "fun"})
    store.db["users"].insert_one(alice)
    store.db["contacts"].insert_one(factories.contact(alice["_id"], "bob@x.org", firstName="Bob"))
    # Last month's invitation: a reminder early in January is still for December's.
    invitation = factories.invitation(alice["_id"], "bob@x.org", "2026-12",
                                      expires_at=SEND_MOMENT, status="sent")  # fmt: skip
    if invited:
        store.db["invitations"].insert_one(invitation)
    before = snapshot(store)

    code, out, err = invoke(cli, "preview", "reminder-second", "--user", str(alice["_id"]),
                            "--contact", "BOB@x.org", "--out", str(tmp_path), "--json")  # fmt: skip

    assert code == 0, err
    summary = json.loads(out)
    assert summary["To"] == "Bob <bob@x.org>" and summary["tone"] == "fun"
    month = "décembre 2026" if invited else "janvier 2027"
    assert summary["Subject"] == f"Alice - 2ème rappel pour {month}"
    token_shown = f"http://localhost:3000/form?token={invitation['token']}" in summary["links"]
    assert token_shown is invited
    assert snapshot(store) == before
    assert smtp_server.received == []


@pytest.mark.parametrize(
    ("arguments", "says"),
    [
        (["--user", "6b0b00000000000000000001"], "go together"),
        (["--user", "6b0b00000000000000000001", "--contact", "x@y.org"], "no user"),
        (["--user", "not-an-id", "--contact", "x@y.org"], "not a user id"),
    ],
)
def test_a_missing_user_or_contact_exits_2_saying_why(
    cli: CliRunner, tmp_path: Path, arguments: list[str], says: str
) -> None:
    code, _, err = invoke(cli, "preview", "invitation", *arguments, "--out", str(tmp_path))
    assert code == 2 and says in err


@pytest.mark.parametrize(
    ("file", "content", "says"),
    [
        ("invitation/friendly.txt", "Bonjour {{ sender_name }\n", "line 1"),
        ("invitation/friendly.txt", "{{ form_url }} {{ no_such_value }}", "does not render"),
        ("reminder/fun.html", "<p><a href='{{ form_url }}'>Go</a></p>", "unsubscribe link"),
        ("layout.html", LAYOUT_WITHOUT_FOOTER, "unsubscribe link"),
        # What only a contact without a first name, or an invitation, trips on:
        ("invitation/friendly.txt", "{{ first_name.upper() }} {{ form_url }}", "without a name"),
        ("invitation/friendly.txt", "{{ days_left + 1 }} {{ form_url }}", "TypeError"),
        # A misspelt name would otherwise be silently ignored.
        ("invitation/freindly.html", "<p>{{ form_url }}</p>", "no message uses this file"),
    ],
)
def test_an_override_template_that_fails_is_named_by_preview_and_config_check(
    cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    file: str, content: str, says: str,
) -> None:  # fmt: skip
    templates = tmp_path / "templates"
    (templates / file).parent.mkdir(parents=True)
    (templates / file).write_text(content)
    monkeypatch.setenv("SCHEDULER_EMAIL_TEMPLATES_DIR", str(templates))

    for command in (["preview", "invitation", "--out", str(tmp_path / "out")], ["config", "check"]):
        code, _, err = invoke(cli, *command)
        assert code == 2, err
        assert f"{templates / file}: " in err and says in err
    assert not (tmp_path / "out").exists()


def test_a_missing_link_is_blamed_on_the_layout_when_the_template_only_extends_it(
    cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    templates = tmp_path / "templates"
    (templates / "invitation").mkdir(parents=True)
    (templates / "layout.html").write_text(LAYOUT_WITHOUT_FOOTER)
    (templates / "invitation" / "fun.html").write_text(
        '{% extends "layout.html" %}{% block content %}<a href="{{ form_url }}">Go</a>'
        "{% endblock %}"
    )
    monkeypatch.setenv("SCHEDULER_EMAIL_TEMPLATES_DIR", str(templates))

    code, _, err = invoke(cli, "config", "check")

    assert code == 2
    assert f"{templates / 'layout.html'}: the rendered message lacks the unsubscribe" in err
    assert f"{templates / 'invitation' / 'fun.html'}:" not in err


def test_a_templates_folder_that_does_not_exist_is_a_configuration_error(
    cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCHEDULER_EMAIL_TEMPLATES_DIR", str(tmp_path / "nope"))
    code, _, err = invoke(cli, "config", "check")
    assert code == 2 and "SCHEDULER_EMAIL_TEMPLATES_DIR" in err


def test_a_sound_override_passes_and_is_used(
    cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    templates = tmp_path / "templates"
    (templates / "invitation").mkdir(parents=True)
    (templates / "invitation" / "fun.txt").write_text(
        "Yo {{ first_name }} ! {{ form_url }}\nStop : {{ unsubscribe_url }}\n"
    )
    monkeypatch.setenv("SCHEDULER_EMAIL_TEMPLATES_DIR", str(templates))

    code, _, err = invoke(cli, "preview", "invitation", "--tone", "fun", "--out", str(tmp_path))
    assert code == 0, err
    assert (tmp_path / "invitation-fun.txt").read_text().startswith("Yo Léa !")
    code, out, _ = invoke(cli, "config", "check", "--json")
    assert code == 0 and json.loads(out)["templates"] == "checked"


@pytest.mark.parametrize("opened", [True, False])
def test_open_hands_the_html_to_a_browser_or_says_where_it_is(
    cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, opened: bool
) -> None:
    asked: list[str] = []
    monkeypatch.setattr("webbrowser.open", lambda url: asked.append(url) or opened)

    code, _, err = invoke(cli, "preview", "invitation", "--out", str(tmp_path), "--open")

    html = (tmp_path / "invitation-friendly.html").resolve()
    assert code == 0 and asked == [html.as_uri()]
    assert ("no browser to open here" in err) is not opened and (str(html) in err) is not opened

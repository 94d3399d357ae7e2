"""The first-run experience: demo and seed."""

from __future__ import annotations

import json
import secrets
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from typer.testing import CliRunner

from formafriend_scheduler.cli.app import app
from formafriend_scheduler.cli.demo import DEMO_DATABASE, demo_uri
from formafriend_scheduler.config import load_settings
from formafriend_scheduler.demo import start_moment
from formafriend_scheduler.seed import SeedPlan, seed
from formafriend_scheduler.store import Store, connect


def test_the_demo_runs_the_whole_cycle_in_under_a_minute(cli: CliRunner, tmp_path: Path) -> None:
    started = time.monotonic()
    result = cli.invoke(app, ["demo", "--outbox", str(tmp_path), "--json"])
    elapsed = time.monotonic() - started

    assert result.exit_code == 0, result.stderr
    assert elapsed < 60
    demo = json.loads(result.stdout)
    steps = {step["title"]: step for step in demo["steps"]}
    sample = steps["Sample data"]["figures"]
    first = next(s for s in demo["steps"] if s["title"].startswith("Monthly invitations for"))
    again = steps["The same, an hour later: nothing is sent twice"]
    assert (sample["users"], sample["contacts"]) == (36, 216)
    # The story stays in one month: the simulated clock starts on the default
    # send moment (the 5th, 18:00 in Paris) and every monthly run sends the
    # month its own date is in, to the users whose day has come.
    started = datetime.fromisoformat(first["at"]).astimezone(ZoneInfo("Europe/Paris"))
    assert (started.day, started.hour, started.minute) == (5, 18, 0)
    assert first["summary"].startswith(f"success: {started:%Y-%m}: ")
    monthly = [s for s in demo["steps"] if "due user(s)" in s["summary"]]
    for step in monthly:
        at = datetime.fromisoformat(step["at"]).astimezone(ZoneInfo("Europe/Paris"))
        assert step["summary"].split(": ")[1] == f"{at:%Y-%m}", step
    assert 0 < first["figures"]["sentInvitations"] < sample["eligibleContacts"]
    assert sum(s["figures"].get("sentInvitations", 0) for s in monthly[1:]) > 0  # later days
    assert again["figures"]["sentInvitations"] == 0
    invitations = sum(s["figures"].get("sentInvitations", 0) for s in monthly)
    firsts = sum(s["figures"].get("firstRemindersSent", 0) for s in demo["steps"])
    seconds = sum(s["figures"].get("secondRemindersSent", 0) for s in demo["steps"])
    outside = [
        s["figures"].get("outsideWindow", 0) for s in demo["steps"] if "reminders" in s["title"]
    ]
    assert 0 < firsts <= invitations and 0 < seconds <= firsts
    assert max(outside) > 0  # quiet hours held some back
    assert steps["Health check"]["summary"] == "healthy"
    emails = list(tmp_path.glob("*.eml"))
    assert (
        len(emails)
        == steps["E-mails written"]["figures"]["files"]
        == invitations + firsts + seconds
    )
    assert "preview invitation --open" in steps["E-mails written"]["summary"]
    assert demo["status"]["metrics"]["totalJobsRun"] == len(demo["history"])


@pytest.mark.parametrize(
    ("real_now", "start"),
    [
        (datetime(2026, 12, 1, 9, 0, tzinfo=UTC), datetime(2026, 12, 5, 17, 0, tzinfo=UTC)),
        (datetime(2027, 7, 31, 23, 30, tzinfo=UTC), datetime(2027, 8, 5, 16, 0, tzinfo=UTC)),
    ],
)
def test_the_demo_starts_on_the_months_default_send_moment_in_paris(
    real_now: datetime, start: datetime
) -> None:
    # 18:00 in Paris: 17:00 UTC in winter, 16:00 in summer; 31 July 23:30 UTC
    # is already August in Paris.
    month, moment = start_moment(real_now, load_settings())
    assert (str(month), moment) == (f"{start:%Y-%m}", start)


def test_the_demo_prints_its_steps_on_a_terminal_style_output(
    cli: CliRunner, tmp_path: Path
) -> None:
    result = cli.invoke(app, ["demo", "--outbox", str(tmp_path)])
    assert result.exit_code == 0
    for text in (
        "Sample data",
        "Monthly invitations for",
        "J+3",
        "J+7",
        "Health check",
        "History",
        str(tmp_path),
    ):
        assert text in result.stdout


@pytest.fixture
def demo_database(mongodb_uri: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Store]:
    """The demo's database on the test server, under a name of this test's
    own (never a real formafriend_demo there), empty before and after."""
    name = f"faf_test_demo_{secrets.token_hex(4)}"
    monkeypatch.setattr("formafriend_scheduler.cli.demo.DEMO_DATABASE", name)
    store = connect(load_settings(mongodb_uri=demo_uri(mongodb_uri)))
    assert store.database_name == name
    yield store
    store.db.client.drop_database(name)


def test_the_demo_refuses_a_real_database_that_holds_users(
    cli: CliRunner, mongodb_uri: str, demo_database: Store, tmp_path: Path
) -> None:
    demo_database.db["users"].insert_one({"username": "someone"})
    refused = cli.invoke(app, ["demo", "--mongodb-uri", mongodb_uri, "--outbox", str(tmp_path)])
    assert refused.exit_code == 2
    assert "already holds users" in refused.stderr and "--force" in refused.stderr


def test_the_demo_only_ever_uses_its_own_database() -> None:
    assert demo_uri("mongodb://u:p@db:27017/formafriend?authSource=admin") == (
        f"mongodb://u:p@db:27017/{DEMO_DATABASE}?authSource=admin"
    )
    assert demo_uri("mongodb://db:27017/").endswith(f"/{DEMO_DATABASE}")


def test_the_demo_ignores_the_operators_environment(
    cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A demo on a production host must not touch its database, textfile, hooks
    or local state; it cleans up its own temporary state."""
    from_dotenv, from_environment = tmp_path / "a.prom", tmp_path / "b.prom"
    (tmp_path / ".env").write_text(f"SCHEDULER_PROMETHEUS_TEXTFILE={from_dotenv}\n")
    monkeypatch.setenv("SCHEDULER_PROMETHEUS_TEXTFILE", str(from_environment))
    monkeypatch.setenv("SCHEDULER_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("MONGODB_URI", "mongodb://127.0.0.1:9/production")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()

    result = cli.invoke(app, ["demo", "--outbox", str(tmp_path / "outbox"), "--json"])

    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["database"] == "in-process"
    assert not from_dotenv.exists() and not from_environment.exists()
    assert not (tmp_path / "state").exists()
    assert list((tmp_path / "tmp").iterdir()) == []


@pytest.mark.real_server_only
def test_the_demo_runs_on_a_real_server_too(
    cli: CliRunner, mongodb_uri: str, demo_database: Store, tmp_path: Path
) -> None:
    result = cli.invoke(
        app, ["demo", "--mongodb-uri", mongodb_uri, "--outbox", str(tmp_path), "--json"]
    )
    assert result.exit_code == 0, result.stderr
    assert demo_database.db["invitations"].count_documents({"status": "sent"}) > 0


def test_the_demo_never_prints_the_password_of_its_server(cli: CliRunner, tmp_path: Path) -> None:
    uri = "mongomock://demo:pa55word@trial/"  # in-process, but named like a server
    result = cli.invoke(app, ["demo", "--mongodb-uri", uri, "--outbox", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.stderr
    assert "pa55word" not in result.stdout + result.stderr
    assert json.loads(result.stdout)["database"] == f"mongomock://demo:***@trial/{DEMO_DATABASE}"


def test_seed_is_reproducible(mongodb_uri: str) -> None:
    first = connect(load_settings(mongodb_uri=mongodb_uri + "_a"))
    second = connect(load_settings(mongodb_uri=mongodb_uri + "_b"))
    plan = SeedPlan(users=12, contacts_per_user=5, seed=9)
    now = datetime(2027, 1, 1, tzinfo=UTC)
    reports = [seed(first, plan, now), seed(second, plan, now)]

    def shape(store: object) -> list[tuple[object, ...]]:
        users = {u["_id"]: u["username"] for u in store.db["users"].find()}  # type: ignore[attr-defined]
        return sorted(
            (users[c["ownerId"]], c["email"], c["status"], c.get("emailStatus"), c.get("optedOut"))
            for c in store.db["contacts"].find()  # type: ignore[attr-defined]
        )

    assert reports[0] == reports[1]
    assert shape(first) == shape(second)
    other = connect(load_settings(mongodb_uri=mongodb_uri + "_c"))
    seed(other, SeedPlan(users=12, contacts_per_user=5, seed=10), now)
    assert shape(other) != shape(first)
    for store in (first, second, other):
        store.db.client.drop_database(store.database_name)


def test_seed_command_refuses_a_non_empty_database_without_force(
    cli: CliRunner, env_database: str
) -> None:
    first = cli.invoke(app, ["seed", "--users", "4", "--contacts-per-user", "3", "--json"])
    again = cli.invoke(app, ["seed", "--users", "4"])
    forced = cli.invoke(app, ["seed", "--users", "4", "--force", "--json"])
    assert first.exit_code == 0 and json.loads(first.stdout)["contacts"] == 12
    assert again.exit_code == 2 and "already holds users" in again.stderr
    assert forced.exit_code == 0 and json.loads(forced.stdout)["users"] == 4

"""The command line as an operator meets it: exit codes, one-line errors, JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
import typer
from typer.core import TyperGroup
from typer.testing import CliRunner

from formafriend_scheduler import __version__
from formafriend_scheduler.cli.app import app
from formafriend_scheduler.cli.state import AppState
from formafriend_scheduler.clock import FrozenClock, SystemClock
from formafriend_scheduler.config import load_settings
from formafriend_scheduler.store import connect
from tests import factories
from tests.jobs.monthly_helpers import SEND_MOMENT

UNREACHABLE = "mongodb://127.0.0.1:9/faf"
MINUTE = timedelta(minutes=1)


def test_version(cli: CliRunner) -> None:
    result = cli.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"formafriend-scheduler {__version__}"


def test_python_dash_m_runs_the_cli() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "formafriend_scheduler", "--version"],
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(__file__).parents[2],
    )
    assert result.returncode == 0
    assert __version__ in result.stdout


def test_help_documents_the_exit_codes(cli: CliRunner) -> None:
    result = cli.invoke(app, ["--help"])
    assert result.exit_code == 0
    for text in ("75   locked", "130  interrupted", "143", "monitoring-plugin", "(partial)"):
        assert text in result.stdout
    for command in ("cleanup", "health-check", "status", "history", "init-db", "config"):
        assert command in result.stdout


def every_command() -> list[list[str]]:
    """Each leaf command of the CLI, as it is typed, found by walking the app."""
    root = typer.main.get_command(app)
    assert isinstance(root, TyperGroup)
    found = []
    for name, command in root.commands.items():
        if isinstance(command, TyperGroup):
            found += [[name, sub] for sub in command.commands]
        else:
            found.append([name])
    return found


def test_the_cli_has_the_commands_the_operators_rely_on() -> None:
    names = {" ".join(command) for command in every_command()}
    assert {
        "monthly-invitations",
        "reminders",
        "cleanup",
        "health-check",
        "status",
        "history",
        "metrics",
        "init-db",
        "seed",
        "demo",
        "config show",
        "config check",
    } <= names


@pytest.mark.parametrize("command", every_command(), ids=" ".join)
def test_every_command_has_help_with_an_example(cli: CliRunner, command: list[str]) -> None:
    result = cli.invoke(app, [*command, "--help"])
    assert result.exit_code == 0
    assert f"Example: formafriend-scheduler {command[0]}" in result.stdout


def test_settings_can_come_from_a_named_env_file(
    cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env_file = tmp_path / "scheduler.env"
    env_file.write_text("SCHEDULER_MONTHLY_JOB_DAY=12\nSMTP_URL=smtp://u:env-pa55@mail:25\n")
    monkeypatch.setenv("SCHEDULER_TIMEZONE", "Asia/Tokyo")  # the environment still wins
    result = cli.invoke(app, ["--env-file", str(env_file), "config", "show", "--json"])
    assert result.exit_code == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown["SCHEDULER_MONTHLY_JOB_DAY"] == 12
    assert shown["SCHEDULER_TIMEZONE"] == "Asia/Tokyo"
    assert "env-pa55" not in result.stdout
    missing = cli.invoke(app, ["--env-file", str(tmp_path / "nope.env"), "config", "show"])
    assert missing.exit_code == 2 and "no such file" in missing.stderr


def test_an_env_file_that_is_a_directory_or_not_utf8_exits_2_naming_it(
    cli: CliRunner, tmp_path: Path
) -> None:
    latin1 = tmp_path / "latin1.env"
    latin1.write_bytes("EMAIL_FROM_NAME=Form-à-Friend\n".encode("latin-1"))
    for env_file, reason in ((tmp_path, "is a directory"), (latin1, "not UTF-8 text")):
        result = cli.invoke(app, ["--env-file", str(env_file), "config", "show"])
        assert result.exit_code == 2, result.stderr
        assert f"--env-file {env_file}: {reason}" in result.stderr
        assert "unexpected" not in result.stderr and "Traceback" not in result.stderr


def test_an_unknown_mongodb_uri_option_is_a_configuration_error(
    cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MONGODB_URI", "mongodb://app:s3cretpw@127.0.0.1:9/faf?retryWrite=true")
    result = cli.invoke(app, ["cleanup"])
    assert result.exit_code == 2
    assert "MONGODB_URI" in result.stderr and "retrywrite" in result.stderr.lower()
    assert "UserWarning" not in result.stderr and "s3cretpw" not in result.stderr


def test_invalid_configuration_exits_2_naming_every_variable(
    cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCHEDULER_MONTHLY_JOB_DAY", "31")
    monkeypatch.setenv("SCHEDULER_TIMEZONE", "Atlantis/Capital")
    result = cli.invoke(app, ["cleanup"])
    assert result.exit_code == 2
    assert "SCHEDULER_MONTHLY_JOB_DAY" in result.stderr
    assert "SCHEDULER_TIMEZONE" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert result.stderr.startswith("error: invalid configuration")


def test_health_check_with_invalid_configuration_is_unknown(
    cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCHEDULER_BATCH_SIZE", "0")
    result = cli.invoke(app, ["health-check"])
    assert result.exit_code == 3
    assert result.stdout.startswith("UNKNOWN: invalid configuration")
    assert "SCHEDULER_BATCH_SIZE" in result.stdout


def test_config_show_masks_secrets(cli: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MONGODB_URI", "mongodb://app:hunter2pw@db.example.org/faf")
    monkeypatch.setenv("SMTP_URL", "smtp://mailer:smtp-secret@smtp.example.org:587")
    as_json = cli.invoke(app, ["config", "show", "--json"])
    table = cli.invoke(app, ["config", "show"])
    assert as_json.exit_code == table.exit_code == 0
    view = json.loads(as_json.stdout)
    assert view["MONGODB_URI"] == "mongodb://app:***@db.example.org/faf"
    assert view["SMTP_URL"] == "smtp://mailer:***@smtp.example.org:587"
    for output in (as_json.stdout, table.stdout):
        assert "hunter2pw" not in output and "smtp-secret" not in output


def test_config_check_pings_the_database(cli: CliRunner, env_database: str) -> None:
    result = cli.invoke(app, ["config", "check", "--json"])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["mongodb"] == "reachable"


def test_an_unreachable_database_exits_75_with_one_line(
    cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MONGODB_URI", "mongodb://app:hunter2pw@127.0.0.1:9/faf")
    monkeypatch.setenv("SCHEDULER_MONGODB_TIMEOUT_SECONDS", "0.2")
    monkeypatch.setenv("SCHEDULER_MONGODB_RETRY_ATTEMPTS", "2")
    for command in (["cleanup"], ["config", "check"], ["status"]):
        result = cli.invoke(app, command)
        assert result.exit_code == 75, command
        *logged, first, hint = result.stderr.strip().splitlines()
        if command == ["cleanup"]:  # a job that could not start tells the monitors
            (event,) = logged
            assert json.loads(event)["event"] == "job-failed"
            assert json.loads(event)["exitCode"] == 75
        else:
            assert logged == []
        assert first.startswith("error: MongoDB unreachable after 2 attempt(s)")
        assert hint.startswith("hint:")
        assert "hunter2pw" not in result.stderr


def test_health_check_of_an_unreachable_database_is_critical(
    cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MONGODB_URI", UNREACHABLE)
    monkeypatch.setenv("SCHEDULER_MONGODB_TIMEOUT_SECONDS", "0.2")
    result = cli.invoke(app, ["health-check", "--json"])
    assert result.exit_code == 2
    assert json.loads(result.stdout)["status"] == "unhealthy"


def test_init_db_twice_creates_nothing_the_second_time(cli: CliRunner, env_database: str) -> None:
    first = cli.invoke(app, ["init-db", "--json"])
    second = cli.invoke(app, ["init-db", "--json"])
    assert first.exit_code == second.exit_code == 0
    assert len(json.loads(first.stdout)["created"]) > 0
    assert json.loads(second.stdout)["created"] == []


def test_cleanup_under_cron_prints_nothing_on_success(cli: CliRunner, env_database: str) -> None:
    result = cli.invoke(app, ["cleanup"])  # CliRunner is not a terminal, like cron
    assert result.exit_code == 0
    assert result.stdout == "" and result.stderr == ""


def test_cleanup_verbose_prints_a_summary_and_json_lines(cli: CliRunner, env_database: str) -> None:
    result = cli.invoke(app, ["--verbose", "cleanup"])
    assert result.exit_code == 0
    assert "cleanup success" in result.stdout
    events = [json.loads(line) for line in result.stderr.splitlines()]
    assert [e["event"] for e in events if "event" in e] == [
        "job-started",
        "job-completed",
        "cleanup-job-completed",
    ]


def test_cleanup_json_reports_the_run(cli: CliRunner, env_database: str) -> None:
    result = cli.invoke(app, ["cleanup", "--dry-run", "--json"])
    assert result.exit_code == 0
    report = json.loads(result.stdout)
    assert report["status"] == "success" and report["type"] == "cleanup"
    assert report["stats"]["expiredInvitations"] == 0


def test_cleanup_while_another_run_holds_the_lock_exits_75_quietly_under_cron(
    cli: CliRunner, env_database: str
) -> None:
    """Overlapping runs are expected (hourly schedules, several hosts): no cron
    mail, just exit 75; the holder is named at info level."""
    store = connect(load_settings(mongodb_uri=env_database))
    now = SystemClock().now()
    store.locks.try_acquire(
        "cleanup", "cleanup-other-run", "db-host-2", 4242, now, timedelta(minutes=2)
    )

    under_cron = cli.invoke(app, ["cleanup"])
    with_info = cli.invoke(app, ["--log-level", "info", "cleanup"])

    assert under_cron.exit_code == with_info.exit_code == 75
    assert under_cron.stdout == under_cron.stderr == ""
    assert "cleanup is locked by run cleanup-other-run on db-host-2 (pid 4242)" in with_info.stderr


def test_no_secret_reaches_logs_output_or_job_records(
    cli: CliRunner, env_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "Sup3rSecretPw"
    monkeypatch.setenv("SMTP_URL", f"smtp://mailer:{secret}@smtp.example.org:587")
    ok_runs = [
        cli.invoke(app, ["--debug", "--log-format", fmt, *command])
        for fmt in ("json", "text")
        for command in (["cleanup", "--json"], ["health-check", "--json"], ["config", "show"])
    ]
    # A failing run, with the password in the URI the error is about.
    monkeypatch.setenv("MONGODB_URI", f"mongodb://app:{secret}@127.0.0.1:9/faf")
    monkeypatch.setenv("SCHEDULER_MONGODB_TIMEOUT_SECONDS", "0.2")
    failing = [
        cli.invoke(app, ["--debug", "--log-format", fmt, command])
        for fmt in ("json", "text")
        for command in ("cleanup", "status", "health-check")
    ]
    assert [r.exit_code for r in failing] == [75, 75, 2] * 2
    store = connect(load_settings(mongodb_uri=env_database))
    records = list(store.db["scheduler_jobs"].find()) + list(store.db["scheduler_health"].find())
    assert records
    for result in ok_runs + failing:
        assert secret not in result.stdout + result.stderr
    assert secret not in repr(records)


def test_a_malformed_mongodb_uri_is_a_configuration_error(
    cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MONGODB_URI", "mongodb://app:p@ss@db.example.org/faf")
    result = cli.invoke(app, ["cleanup"])
    assert result.exit_code == 2
    assert "MONGODB_URI" in result.stderr
    assert "p@ss" not in result.stderr


def test_status_json_has_the_seed_keys(cli: CliRunner, env_database: str) -> None:
    cli.invoke(app, ["cleanup"])
    cli.invoke(app, ["health-check"])
    result = cli.invoke(app, ["status", "--json"])
    assert result.exit_code == 0
    status = json.loads(result.stdout)
    for key in (
        "isRunning",
        "activeJobs",
        "activeWorkers",
        "cronJobs",
        "metrics",
        "lastHealthCheck",
    ):
        assert key in status
    assert status["isRunning"] is False
    assert status["metrics"]["totalJobsRun"] == 1
    assert status["lastRuns"]["cleanup"]["status"] == "success"
    assert status["lastHealthCheck"]["status"] in ("healthy", "degraded")


def test_status_shows_a_live_run(cli: CliRunner, env_database: str) -> None:
    store = connect(load_settings(mongodb_uri=env_database))
    now = SystemClock().now()
    store.locks.try_acquire("cleanup", "cleanup-live", "host-x", 7, now, timedelta(minutes=2))
    store.db["scheduler_jobs"].insert_one(
        {
            "_id": "cleanup-live",
            "type": "cleanup",
            "status": "running",
            "startedAt": now,
            "host": "host-x",
            "pid": 7,
            "progress": {"done": 3, "total": 9},
        }
    )
    status = json.loads(cli.invoke(app, ["status", "--json"]).stdout)
    assert status["isRunning"] is True and status["activeJobs"] == 1
    assert status["running"][0]["progress"] == {"done": 3, "total": 9}
    table = cli.invoke(app, ["status"]).stdout
    assert "cleanup-live" in table and "3/9" in table


def test_history_filters_and_orders_newest_first(cli: CliRunner, env_database: str) -> None:
    store = connect(load_settings(mongodb_uri=env_database))
    now = SystemClock().now()
    store.db["scheduler_jobs"].insert_many(
        [
            {
                "_id": "a",
                "type": "cleanup",
                "status": "success",
                "startedAt": now - timedelta(days=3),
            },
            {
                "_id": "b",
                "type": "cleanup",
                "status": "failed",
                "startedAt": now - timedelta(hours=2),
            },
            {
                "_id": "c",
                "type": "reminders",
                "status": "success",
                "startedAt": now - timedelta(hours=1),
            },
        ]
    )

    def ids(*args: str) -> list[str]:
        result = cli.invoke(app, ["history", "--json", *args])
        assert result.exit_code == 0, result.stderr
        return [record["_id"] for record in json.loads(result.stdout)]

    assert ids() == ["c", "b", "a"]
    assert ids("--type", "cleanup") == ["b", "a"]
    assert ids("--status", "failed") == ["b"]
    assert ids("--since", "24h") == ["c", "b"]
    assert ids("--limit", "1") == ["c"]
    assert "cleanup" in cli.invoke(app, ["history"]).stdout


def test_history_rejects_an_unknown_status_or_job_type(cli: CliRunner, env_database: str) -> None:
    status = cli.invoke(app, ["history", "--status", "exploded"])
    job_type = cli.invoke(app, ["history", "--type", "monthly"])  # a typo would list nothing
    assert status.exit_code == job_type.exit_code == 2
    assert "Traceback" not in status.stderr + job_type.stderr
    assert "monthly-invitations, reminders, cleanup" in job_type.stderr


def test_monthly_invitations_rejects_a_bad_month_or_user(cli: CliRunner) -> None:
    bad_month = cli.invoke(app, ["monthly-invitations", "--month", "2027-13"])
    bad_user = cli.invoke(app, ["monthly-invitations", "--user", "alice"])
    assert bad_month.exit_code == bad_user.exit_code == 2
    assert "YYYY-MM" in bad_month.stderr and "user id" in bad_user.stderr


def test_monthly_invitations_end_to_end_from_the_command_line(
    cli: CliRunner, env_database: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A user on the defaults (the 5th at 18:00, Paris) is sent nothing a minute
    before that moment, everything at it, and nothing again in the next run."""
    monkeypatch.setenv("EMAIL_TRANSPORT", "file")
    monkeypatch.setenv("EMAIL_OUTBOX_DIR", str(tmp_path / "outbox"))
    factories.one_user_with_contacts(env_database)
    command = ["monthly-invitations", "--workers", "0", "--json"]

    early = cli.invoke(app, command, obj=AppState(clock=FrozenClock(SEND_MOMENT - MINUTE)))
    first = cli.invoke(app, command, obj=AppState(clock=FrozenClock(SEND_MOMENT)))
    second = cli.invoke(app, command, obj=AppState(clock=FrozenClock(SEND_MOMENT + MINUTE)))

    assert early.exit_code == first.exit_code == second.exit_code == 0, first.stderr
    assert json.loads(early.stdout)["stats"]["totalUsers"] == 0
    assert json.loads(first.stdout)["stats"]["sentInvitations"] == 3
    assert json.loads(second.stdout)["stats"]["sentInvitations"] == 0
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 3


def test_reminders_rejects_an_unknown_type(cli: CliRunner) -> None:
    result = cli.invoke(app, ["reminders", "--type", "third"])
    assert result.exit_code == 2
    assert "first or second" in result.stderr


def test_the_quiet_hours_must_be_times_and_not_empty(
    cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCHEDULER_REMINDER_WINDOW_START", "9h")
    monkeypatch.setenv("SCHEDULER_REMINDER_WINDOW_END", "9h")
    result = cli.invoke(app, ["reminders"])
    assert result.exit_code == 2
    assert "SCHEDULER_REMINDER_WINDOW_START: must be a time HH:MM" in result.stderr


def test_metrics_per_job_type_over_a_window(cli: CliRunner, env_database: str) -> None:
    for _ in range(3):
        assert cli.invoke(app, ["cleanup"]).exit_code == 0
    result = cli.invoke(app, ["metrics", "--json", "--since", "1h"])
    assert result.exit_code == 0, result.stderr
    (cleanup,) = json.loads(result.stdout)["jobs"]
    assert cleanup["job"] == "cleanup" and cleanup["runs"] == 3
    assert cleanup["successRate"] == 1.0
    assert set(cleanup["durationSeconds"]) == {"p50", "p95", "max", "recent"}
    assert len(cleanup["durationSeconds"]["recent"]) == 3
    table = cli.invoke(app, ["metrics"]).stdout
    assert "cleanup" in table and "p50/p95/max" in table


def test_a_dead_webhook_and_ping_never_fail_a_run(
    cli: CliRunner, env_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    dead = "http://127.0.0.1:9"
    monkeypatch.setenv("SCHEDULER_WEBHOOK_URL", dead + "/hook")
    monkeypatch.setenv("SCHEDULER_WEBHOOK_EVENTS", "*")
    monkeypatch.setenv("SCHEDULER_WEBHOOK_ATTEMPTS", "1")
    monkeypatch.setenv("SCHEDULER_PING_URL", dead + "/ping")
    monkeypatch.setenv("SCHEDULER_EVENT_COMMAND", "exit 7")
    monkeypatch.setenv("SCHEDULER_EVENT_COMMAND_EVENTS", "*")
    result = cli.invoke(app, ["--verbose", "cleanup", "--json"])
    assert result.exit_code == 0
    assert json.loads(result.stdout)["status"] == "success"
    assert "webhook for job-started failed" in result.stderr
    assert "event command for job-started exited 7" in result.stderr


def test_health_check_always_prints_one_status_line_even_when_ok_under_cron(
    cli: CliRunner, env_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The monitoring-plugin contract: exit code plus one status line on stdout.
    (The CliRunner's stdout is not a terminal, as under cron.)"""
    monkeypatch.setenv("SCHEDULER_MEMORY_ALERT_THRESHOLD", "1")  # whatever this host's load
    cli.invoke(app, ["init-db"])
    result = cli.invoke(app, ["health-check"])
    assert (result.exit_code, result.stdout, result.stderr) == (0, "OK: healthy\n", "")


def test_health_check_that_cannot_start_says_unknown_on_stdout_and_stderr(
    cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under cron the status line goes to /dev/null: the reason must reach
    stderr (cron mail), as JSON too for scripts."""
    env_file = tmp_path / "env"
    env_file.write_text("MONGODB_URI=mongodb://127.0.0.1:9/faf\n")
    readable = os.access
    monkeypatch.setattr(
        "formafriend_scheduler.config.os.access",
        lambda path, mode: False if Path(path) == env_file else readable(path, mode),
    )  # as if chmod 000 (tests run as root in CI, which reads anything)
    plain = cli.invoke(app, ["--env-file", str(env_file), "health-check"])
    as_json = cli.invoke(app, ["--env-file", str(env_file), "health-check", "--json"])
    job = cli.invoke(app, ["--env-file", str(env_file), "cleanup"])

    assert plain.exit_code == as_json.exit_code == 3
    assert plain.stdout.startswith("UNKNOWN: invalid configuration")
    assert "not readable by this user" in plain.stdout and "not readable" in plain.stderr
    report = json.loads(as_json.stdout)
    assert report["status"] == "unknown" and "not readable" in report["error"]
    assert job.exit_code == 2 and "not readable by this user" in job.stderr

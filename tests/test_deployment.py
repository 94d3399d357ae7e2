"""crontab.example and the systemd units: valid, and on the same schedule."""

from __future__ import annotations

import configparser
import re
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter

from formafriend_scheduler.config import isolated_settings, load_settings
from formafriend_scheduler.schedule import SCHEDULE_TIMEZONE, SCHEDULES

REPO = Path(__file__).parents[1]
SYSTEMD = REPO / "systemd"
BASE = datetime(2027, 1, 10, 0, 0, tzinfo=UTC)  # away from daylight-saving changes
needs_systemd = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None,
    reason="systemd-analyze is not installed (Debian package systemd)",
)


def crontab_entries() -> dict[str, str]:
    """job -> its five cron fields, from crontab.example."""
    entries = {}
    for line in (REPO / "crontab.example").read_text().splitlines():
        match = re.match(
            r"^([\d*/,-]+\s+[\d*/,-]+\s+[\d*/,-]+\s+[\d*/,-]+\s+[\d*/,-]+)\s+\$FAF\s+(\S+)", line
        )
        if match:
            entries[match.group(2)] = " ".join(match.group(1).split())
    return entries


def timer(job: str) -> configparser.SectionProxy:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(SYSTEMD / f"formafriend-scheduler-{job}.timer")
    return parser["Timer"]


def service_unit() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(SYSTEMD / "formafriend-scheduler@.service")
    return parser


def cron_firings(cron: str, count: int) -> list[datetime]:
    zone = ZoneInfo(SCHEDULE_TIMEZONE)
    it = croniter(cron, BASE.astimezone(zone))
    return [it.get_next(datetime).astimezone(UTC) for _ in range(count)]


def systemd_firings(on_calendar: str, count: int) -> list[datetime]:
    result = subprocess.run(
        [
            "systemd-analyze", "calendar", f"--iterations={count}",
            f"--base-time={BASE:%Y-%m-%d %H:%M:%S} UTC", on_calendar,
        ],
        capture_output=True, text=True, check=True, env={"TZ": "UTC", "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    found = re.findall(
        r"(?:Next elapse|Iter\. #\d+): \w+ (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC", result.stdout
    )
    return [datetime.fromisoformat(value).replace(tzinfo=UTC) for value in found]


def test_the_crontab_runs_every_job_on_the_documented_schedule() -> None:
    assert crontab_entries() == {schedule.job: schedule.cron for schedule in SCHEDULES}
    text = (REPO / "crontab.example").read_text()
    assert f"CRON_TZ={SCHEDULE_TIMEZONE}" in text
    assert "0 18 5 * *" in text  # the seed's line, explained


def test_each_job_has_a_timer_on_the_documented_schedule() -> None:
    for schedule in SCHEDULES:
        section = timer(schedule.job)
        assert section["OnCalendar"] == f"{schedule.on_calendar} {SCHEDULE_TIMEZONE}"
        assert section["Persistent"] == "true"
        assert section["Unit"] == f"formafriend-scheduler@{schedule.job}.service"


@needs_systemd
@pytest.mark.parametrize("schedule", SCHEDULES, ids=lambda s: s.job)
def test_cron_and_systemd_fire_at_the_same_moments(schedule: object) -> None:
    count = 30
    on_calendar = timer(schedule.job)["OnCalendar"]  # type: ignore[attr-defined]
    assert systemd_firings(on_calendar, count) == cron_firings(schedule.cron, count)  # type: ignore[attr-defined]


def test_the_service_is_hardened_and_bounded() -> None:
    parser = service_unit()
    service = parser["Service"]
    assert service["Type"] == "oneshot"
    assert service["User"] == "formafriend-scheduler"
    assert service["EnvironmentFile"] == "/etc/formafriend-scheduler/env"
    for setting in ("TimeoutStartSec", "MemoryMax", "Nice", "IOSchedulingClass"):
        assert service[setting]
    for setting, value in {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "PrivateDevices": "yes",
        "SystemCallFilter": "@system-service",
    }.items():
        assert service[setting] == value
    assert parser["Unit"]["After"] == "network-online.target"


@needs_systemd
def test_systemd_accepts_the_units(tmp_path: Path) -> None:
    for unit in [*SYSTEMD.glob("*.service"), *SYSTEMD.glob("*.timer")]:
        text = unit.read_text().replace(
            "/opt/formafriend-scheduler/.venv/bin/formafriend-scheduler",
            str(Path(sys.executable).parent / "formafriend-scheduler"),  # this install
        )
        (tmp_path / unit.name).write_text(text)
    units = [str(tmp_path / "formafriend-scheduler@cleanup.service")]
    units += [str(path) for path in sorted(tmp_path.glob("*.timer"))]
    result = subprocess.run(
        ["systemd-analyze", "verify", *units], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout + result.stderr == ""  # not even an ignored unknown setting


def test_systemd_waits_longer_than_a_run_can_take_by_default() -> None:
    """Duration limit + a batch in flight (worker timeout) + shutdown grace."""
    defaults = isolated_settings()
    longest = (
        defaults.max_job_duration_hours * 3600
        + defaults.worker_timeout_ms / 1000
        + defaults.shutdown_grace_seconds
    )
    timeout = re.fullmatch(r"(\d+)min", service_unit()["Service"]["TimeoutStartSec"])
    assert timeout is not None
    assert int(timeout.group(1)) * 60 > longest


def test_the_journal_gets_the_info_lines() -> None:
    """Under systemd, events (job-started, job-completed) and 'locked' notes
    belong in the journal; cron stays quiet by default instead."""
    assert "--log-level info" in service_unit()["Service"]["ExecStart"]


def test_the_env_example_keeps_to_what_systemd_and_dotenv_read_alike(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every line in the plain subset (checked by pattern: systemd itself is
    not run here), and python-dotenv reads the values as written."""
    path = SYSTEMD / "env.example"
    for line in path.read_text().splitlines():
        if line and not line.startswith("#"):
            # the subset both parsers agree on: no quotes, comments, escapes, ${}
            assert re.fullmatch(r"[A-Z_]+=[^\s\"'#\\$]+", line), line
            monkeypatch.delenv(line.split("=")[0], raising=False)  # the file must win here
    settings = load_settings(env_file=path)
    assert settings.app_base_url == "https://form-a-friend.example.org"
    assert settings.state_dir == Path("/var/lib/formafriend-scheduler")

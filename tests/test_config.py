"""Settings: the original service's variables, validation all at once, masking."""

from __future__ import annotations

from pathlib import Path

import pytest

from formafriend_scheduler.config import load_settings, mask_url
from formafriend_scheduler.errors import ConfigError


def test_defaults_match_the_original_service(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SCHEDULER_MAX_CLOCK_SKEW_SECONDS")  # set for every test (conftest)
    settings = load_settings()
    view = settings.public_view()
    assert view["SCHEDULER_MONTHLY_JOB_DAY"] == 5
    assert view["SCHEDULER_MONTHLY_JOB_HOUR"] == 18
    assert view["SCHEDULER_TIMEZONE"] == "Europe/Paris"
    assert view["SCHEDULER_BATCH_SIZE"] == 50
    assert view["SCHEDULER_INVITATION_BATCH_SIZE"] == 100
    assert view["SCHEDULER_MAX_WORKERS"] == 4
    assert view["SCHEDULER_WORKER_TIMEOUT"] == 300_000
    assert view["SCHEDULER_MAX_MEMORY_MB"] == 512
    assert view["SCHEDULER_MAX_JOB_DURATION_HOURS"] == 1
    assert view["SCHEDULER_FIRST_REMINDER_DAYS"] == 3
    assert view["SCHEDULER_SECOND_REMINDER_DAYS"] == 7
    assert view["SCHEDULER_EXPIRED_TOKEN_RETENTION_DAYS"] == 90
    assert view["SCHEDULER_METRICS_RETENTION_HOURS"] == 72
    assert view["SCHEDULER_ERROR_RATE_THRESHOLD"] == 0.05
    assert view["SCHEDULER_MEMORY_ALERT_THRESHOLD"] == 0.8
    assert view["MONGODB_URI"] == "mongodb://localhost:27017/formafriend"
    assert view["SCHEDULER_LOCK_TTL_SECONDS"] == 120
    assert view["SCHEDULER_MAX_CLOCK_SKEW_SECONDS"] == 30
    assert view["SCHEDULER_HISTORY_RETENTION_DAYS"] == 90
    assert settings.database_name == "formafriend"


def test_environment_variables_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCHEDULER_MONTHLY_JOB_DAY", "12")
    monkeypatch.setenv("SCHEDULER_TIMEZONE", "America/New_York")
    settings = load_settings()
    assert settings.monthly_job_day == 12
    assert settings.timezone == "America/New_York"


def test_a_dotenv_file_in_the_working_directory_is_read(tmp_path: Path) -> None:
    # The isolated_environment fixture made tmp_path the working directory.
    (tmp_path / ".env").write_text("SCHEDULER_BATCH_SIZE=25\nUNRELATED=1\n")
    assert load_settings().batch_size == 25


def test_environment_wins_over_dotenv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".env").write_text("SCHEDULER_BATCH_SIZE=25\n")
    monkeypatch.setenv("SCHEDULER_BATCH_SIZE", "30")
    assert load_settings().batch_size == 30


@pytest.mark.parametrize(
    ("variable", "value", "reason"),
    [
        ("SCHEDULER_MONTHLY_JOB_DAY", "29", "less than or equal to 28"),
        ("SCHEDULER_MONTHLY_JOB_DAY", "0", "greater than or equal to 1"),
        ("SCHEDULER_MONTHLY_JOB_HOUR", "24", "less than or equal to 23"),
        ("SCHEDULER_TIMEZONE", "Mars/Olympus", "IANA timezone"),
        ("SCHEDULER_BATCH_SIZE", "0", "greater than 0"),
        ("SCHEDULER_MAX_WORKERS", "-1", "greater than 0"),
        ("SCHEDULER_ERROR_RATE_THRESHOLD", "0", "greater than 0"),
        ("SCHEDULER_MEMORY_ALERT_THRESHOLD", "1.5", "less than or equal to 1"),
        ("SCHEDULER_MAX_MEMORY_MB", "lots", "valid integer"),
        ("MONGODB_URI", "postgres://db", "mongodb://"),
        ("SMTP_URL", "smtp://host?security=maybe", "security="),
        ("APP_BASE_URL", "form-a-friend.com", "http"),
        ("SCHEDULER_REMINDER_WINDOW_END", "24:00", "HH:MM"),
        ("SCHEDULER_REMINDER_WINDOW_END", "09:00", "empty window"),
    ],
)
def test_each_invalid_variable_is_named_with_its_reason(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, reason: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as raised:
        load_settings()
    assert len(raised.value.problems) == 1
    assert raised.value.problems[0].startswith(variable + ":")
    assert reason in raised.value.problems[0]


def test_every_bad_variable_is_reported_in_one_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCHEDULER_MONTHLY_JOB_DAY", "31")
    monkeypatch.setenv("SCHEDULER_TIMEZONE", "Nowhere/Land")
    monkeypatch.setenv("SCHEDULER_SECOND_REMINDER_DAYS", "2")
    monkeypatch.setenv("EMAIL_TRANSPORT", "file")
    with pytest.raises(ConfigError) as raised:
        load_settings()
    named = [problem.split(":", 1)[0] for problem in raised.value.problems]
    assert named == [
        "SCHEDULER_MONTHLY_JOB_DAY",
        "SCHEDULER_TIMEZONE",
        "SCHEDULER_SECOND_REMINDER_DAYS",
        "EMAIL_OUTBOX_DIR",
    ]


def test_a_bad_secret_variable_is_reported_without_its_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MONGODB_URI", "postgresql://admin:hunter2@db/app")
    with pytest.raises(ConfigError) as raised:
        load_settings()
    assert "hunter2" not in str(raised.value)
    assert "MONGODB_URI" in str(raised.value)


def test_secrets_are_masked_in_the_public_view(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "MONGODB_URI", "mongodb://app:s3cr%40t@db.example.org:27017/faf?authSource=admin"
    )
    monkeypatch.setenv("SMTP_URL", "smtp://mailer:smtp-pass@smtp.example.org:587?security=starttls")
    settings = load_settings()
    view = settings.public_view()
    assert view["MONGODB_URI"] == "mongodb://app:***@db.example.org:27017/faf?authSource=admin"
    assert view["SMTP_URL"] == "smtp://mailer:***@smtp.example.org:587?security=starttls"
    assert set(settings.secret_values()) == {"s3cr%40t", "s3cr@t", "smtp-pass"}
    assert settings.database_name == "faf"


def test_mask_url_leaves_urls_without_password_alone() -> None:
    assert mask_url("mongodb://localhost:27017/x") == "mongodb://localhost:27017/x"
    assert mask_url("smtp://user@host") == "smtp://user@host"


def test_hook_secrets_are_masked_and_redacted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCHEDULER_WEBHOOK_URL", "https://hooks.slack.com/services/T0/B0/tok3n")
    monkeypatch.setenv("SCHEDULER_WEBHOOK_SECRET", "hmac-secret")
    monkeypatch.setenv("SCHEDULER_PING_URL_CLEANUP", "https://hc-ping.com/5f3c-uuid")
    settings = load_settings()
    view = settings.public_view()
    assert view["SCHEDULER_WEBHOOK_URL"] == "https://hooks.slack.com/***"
    assert view["SCHEDULER_WEBHOOK_SECRET"] == "***"
    assert view["SCHEDULER_PING_URL_CLEANUP"] == "https://hc-ping.com/***"
    assert {"hmac-secret", "/services/T0/B0/tok3n", "/5f3c-uuid"} <= set(settings.secret_values())
    assert settings.ping_url_for("cleanup") == "https://hc-ping.com/5f3c-uuid"
    assert settings.ping_url_for("reminders") is None


def test_unknown_hook_events_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCHEDULER_WEBHOOK_EVENTS", "job-failed,job-explode")
    with pytest.raises(ConfigError, match="SCHEDULER_WEBHOOK_EVENTS: unknown event"):
        load_settings()


def test_a_bad_hook_url_is_reported_without_its_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCHEDULER_PING_URL", "ftp://hc-ping.com/5f3c-secret-uuid")
    monkeypatch.setenv("SCHEDULER_WEBHOOK_SECRET", "")
    with pytest.raises(ConfigError) as raised:
        load_settings()
    assert "SCHEDULER_PING_URL" in str(raised.value)
    assert "5f3c-secret-uuid" not in str(raised.value)


def test_credentials_in_a_hook_url_are_masked_and_redacted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SCHEDULER_WEBHOOK_URL", "https://bot:pa55word@hooks.example.org:8443/")
    settings = load_settings()
    assert settings.public_view()["SCHEDULER_WEBHOOK_URL"] == "https://***@hooks.example.org:8443"
    assert "pa55word" in settings.secret_values()

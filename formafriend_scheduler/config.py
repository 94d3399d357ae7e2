"""Settings from the environment (and a `.env` file), validated all at once.

Variable names are the original service's (`SCHEDULER_*`) plus the database,
e-mail and scheduler additions documented in the README. Every invalid
variable is reported by its environment name in one `ConfigError`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qs, quote, unquote, urlsplit, urlunsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AliasChoices, Field, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from formafriend_scheduler.errors import ConfigError

MASK = "***"
_TIME_OF_DAY = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
SMTP_SECURITY_MODES = ("starttls", "tls", "none")
# URLs whose password is a secret; values that are secret whole; URLs whose
# path and query are a secret (webhook and ping tokens live there).
SECRET_VARIABLES = frozenset({"MONGODB_URI", "SMTP_URL", "SMTP_FALLBACK_URL"})
SECRET_WHOLE = frozenset({"SCHEDULER_WEBHOOK_SECRET"})
SECRET_PATHS = frozenset(
    {
        "SCHEDULER_WEBHOOK_URL",
        "SCHEDULER_PING_URL",
        "SCHEDULER_PING_URL_MONTHLY_INVITATIONS",
        "SCHEDULER_PING_URL_REMINDERS",
        "SCHEDULER_PING_URL_CLEANUP",
        "SCHEDULER_PING_URL_HEALTH_CHECK",
    }
)
SECRETS = SECRET_VARIABLES | SECRET_WHOLE | SECRET_PATHS
DEFAULT_HOOK_EVENTS = "job-failed,alerts-triggered,alerts-resolved,high-memory-usage"
KNOWN_EVENTS = frozenset(
    {
        "job-started",
        "job-completed",
        "job-failed",
        "monthly-job-completed",
        "reminder-job-completed",
        "cleanup-job-completed",
        "high-memory-usage",
        "alerts-triggered",
        "alerts-resolved",
    }
)


def _env(name: str) -> Any:
    # validation_alias binds a field to exactly one environment name.
    return AliasChoices(name)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        frozen=True,
        validate_default=True,
    )

    # Core scheduling (original service)
    monthly_job_day: int = Field(5, ge=1, le=28, validation_alias=_env("SCHEDULER_MONTHLY_JOB_DAY"))
    monthly_job_hour: int = Field(
        18, ge=0, le=23, validation_alias=_env("SCHEDULER_MONTHLY_JOB_HOUR")
    )
    timezone: str = Field("Europe/Paris", validation_alias=_env("SCHEDULER_TIMEZONE"))

    # Performance (original service)
    batch_size: int = Field(50, gt=0, validation_alias=_env("SCHEDULER_BATCH_SIZE"))
    invitation_batch_size: int = Field(
        100, gt=0, validation_alias=_env("SCHEDULER_INVITATION_BATCH_SIZE")
    )
    max_workers: int = Field(4, gt=0, validation_alias=_env("SCHEDULER_MAX_WORKERS"))
    worker_timeout_ms: int = Field(300_000, gt=0, validation_alias=_env("SCHEDULER_WORKER_TIMEOUT"))
    max_memory_mb: int = Field(512, gt=0, validation_alias=_env("SCHEDULER_MAX_MEMORY_MB"))
    max_job_duration_hours: float = Field(
        1.0, gt=0, validation_alias=_env("SCHEDULER_MAX_JOB_DURATION_HOURS")
    )

    # Reminders (original service)
    first_reminder_days: int = Field(
        3, gt=0, validation_alias=_env("SCHEDULER_FIRST_REMINDER_DAYS")
    )
    second_reminder_days: int = Field(
        7, gt=0, validation_alias=_env("SCHEDULER_SECOND_REMINDER_DAYS")
    )

    # Quiet hours: reminders only go out between these local times of the sender.
    reminder_window_start: str = Field(
        "09:00", validation_alias=_env("SCHEDULER_REMINDER_WINDOW_START")
    )
    reminder_window_end: str = Field(
        "20:00", validation_alias=_env("SCHEDULER_REMINDER_WINDOW_END")
    )

    # Cleanup and retention (original service, plus job/health history)
    expired_token_retention_days: int = Field(
        90, gt=0, validation_alias=_env("SCHEDULER_EXPIRED_TOKEN_RETENTION_DAYS")
    )
    metrics_retention_hours: int = Field(
        72, gt=0, validation_alias=_env("SCHEDULER_METRICS_RETENTION_HOURS")
    )
    history_retention_days: int = Field(
        90, gt=0, validation_alias=_env("SCHEDULER_HISTORY_RETENTION_DAYS")
    )

    # Monitoring thresholds (original service)
    error_rate_threshold: float = Field(
        0.05, gt=0, le=1, validation_alias=_env("SCHEDULER_ERROR_RATE_THRESHOLD")
    )
    memory_alert_threshold: float = Field(
        0.8, gt=0, le=1, validation_alias=_env("SCHEDULER_MEMORY_ALERT_THRESHOLD")
    )

    # Lease lock and clocks
    lock_ttl_seconds: int = Field(120, ge=3, validation_alias=_env("SCHEDULER_LOCK_TTL_SECONDS"))
    max_clock_skew_seconds: float = Field(
        30, gt=0, validation_alias=_env("SCHEDULER_MAX_CLOCK_SKEW_SECONDS")
    )

    shutdown_grace_seconds: float = Field(
        30, ge=0, validation_alias=_env("SCHEDULER_SHUTDOWN_GRACE_SECONDS")
    )

    # MongoDB
    mongodb_uri: str = Field(
        "mongodb://localhost:27017/formafriend", validation_alias=_env("MONGODB_URI")
    )
    mongodb_timeout_seconds: float = Field(
        10, gt=0, validation_alias=_env("SCHEDULER_MONGODB_TIMEOUT_SECONDS")
    )
    mongodb_retry_attempts: int = Field(
        5, ge=1, validation_alias=_env("SCHEDULER_MONGODB_RETRY_ATTEMPTS")
    )

    # E-mail (used by monthly-invitations and reminders)
    email_transport: Literal["smtp", "file"] = Field(
        "smtp", validation_alias=_env("EMAIL_TRANSPORT")
    )
    smtp_url: str = Field("smtp://localhost:25?security=none", validation_alias=_env("SMTP_URL"))
    smtp_fallback_url: str | None = Field(None, validation_alias=_env("SMTP_FALLBACK_URL"))
    email_outbox_dir: Path | None = Field(None, validation_alias=_env("EMAIL_OUTBOX_DIR"))
    email_from_address: str = Field(
        "noreply@form-a-friend.com", validation_alias=_env("EMAIL_FROM_ADDRESS")
    )
    email_from_name: str = Field("Form-a-Friend", validation_alias=_env("EMAIL_FROM_NAME"))
    email_rate_per_second: float = Field(
        0, ge=0, validation_alias=_env("SCHEDULER_EMAIL_RATE_PER_SECOND")
    )
    invitation_expiry_days: int = Field(
        60, gt=0, validation_alias=_env("SCHEDULER_INVITATION_EXPIRY_DAYS")
    )
    email_templates_dir: Path | None = Field(
        None, validation_alias=_env("SCHEDULER_EMAIL_TEMPLATES_DIR")
    )
    app_base_url: str = Field("http://localhost:3000", validation_alias=_env("APP_BASE_URL"))
    # RFC 8058 one-click unsubscribe: `List-Unsubscribe-Post` beside the
    # HTTPS link (off for an app whose unsubscribe endpoint accepts only GET).
    email_one_click_unsubscribe: bool = Field(
        True, validation_alias=_env("EMAIL_ONE_CLICK_UNSUBSCRIBE")
    )
    # A mailbox that unsubscribes whoever writes to it (RFC 2369 mailto:),
    # offered beside the link; the token travels in the subject.
    email_unsubscribe_mailto: str | None = Field(
        None, validation_alias=_env("EMAIL_UNSUBSCRIBE_MAILTO")
    )

    # Monitoring: event sinks, dead-man pings, alerts, Prometheus
    webhook_url: str | None = Field(None, validation_alias=_env("SCHEDULER_WEBHOOK_URL"))
    webhook_events: str = Field(
        DEFAULT_HOOK_EVENTS, validation_alias=_env("SCHEDULER_WEBHOOK_EVENTS")
    )
    webhook_secret: str | None = Field(None, validation_alias=_env("SCHEDULER_WEBHOOK_SECRET"))
    webhook_timeout_seconds: float = Field(
        5, gt=0, validation_alias=_env("SCHEDULER_WEBHOOK_TIMEOUT_SECONDS")
    )
    webhook_attempts: int = Field(3, ge=1, validation_alias=_env("SCHEDULER_WEBHOOK_ATTEMPTS"))
    event_command: str | None = Field(None, validation_alias=_env("SCHEDULER_EVENT_COMMAND"))
    event_command_events: str = Field(
        DEFAULT_HOOK_EVENTS, validation_alias=_env("SCHEDULER_EVENT_COMMAND_EVENTS")
    )
    event_command_timeout_seconds: float = Field(
        30, gt=0, validation_alias=_env("SCHEDULER_EVENT_COMMAND_TIMEOUT_SECONDS")
    )
    alert_email: str | None = Field(None, validation_alias=_env("SCHEDULER_ALERT_EMAIL"))
    alert_repeat_minutes: float = Field(
        60, gt=0, validation_alias=_env("SCHEDULER_ALERT_REPEAT_MINUTES")
    )
    queued_alert_hours: float = Field(
        6, gt=0, validation_alias=_env("SCHEDULER_QUEUED_ALERT_HOURS")
    )
    ping_url: str | None = Field(None, validation_alias=_env("SCHEDULER_PING_URL"))
    ping_url_monthly_invitations: str | None = Field(
        None, validation_alias=_env("SCHEDULER_PING_URL_MONTHLY_INVITATIONS")
    )
    ping_url_reminders: str | None = Field(
        None, validation_alias=_env("SCHEDULER_PING_URL_REMINDERS")
    )
    ping_url_cleanup: str | None = Field(None, validation_alias=_env("SCHEDULER_PING_URL_CLEANUP"))
    ping_url_health_check: str | None = Field(
        None, validation_alias=_env("SCHEDULER_PING_URL_HEALTH_CHECK")
    )
    prometheus_textfile: Path | None = Field(
        None, validation_alias=_env("SCHEDULER_PROMETHEUS_TEXTFILE")
    )
    # Local state that must outlive a MongoDB outage (alerts sent while it is down).
    state_dir: Path | None = Field(None, validation_alias=_env("SCHEDULER_STATE_DIR"))

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("not a known IANA timezone (for example Europe/Paris)") from None
        return value

    @field_validator("reminder_window_start", "reminder_window_end")
    @classmethod
    def _time_of_day(cls, value: str) -> str:
        if not _TIME_OF_DAY.match(value.strip()):
            raise ValueError("must be a time HH:MM (00:00 to 23:59)")
        return value.strip()

    @field_validator("reminder_window_end")
    @classmethod
    def _window_not_empty(cls, value: str, info: ValidationInfo) -> str:
        if value == info.data.get("reminder_window_start"):
            raise ValueError("must differ from SCHEDULER_REMINDER_WINDOW_START (an empty window)")
        return value

    @field_validator("mongodb_uri")
    @classmethod
    def _mongodb_uri(cls, value: str) -> str:
        scheme = value.split("://", 1)[0] if "://" in value else ""
        if scheme not in ("mongodb", "mongodb+srv", "mongomock"):
            raise ValueError("must start with mongodb://, mongodb+srv:// or mongomock://")
        return value

    @field_validator("smtp_url", "smtp_fallback_url")
    @classmethod
    def _smtp_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("smtp", "smtps"):
            raise ValueError("must start with smtp:// (or smtps://)")
        if not parts.hostname:
            raise ValueError("has no host name")
        try:
            parts.port  # noqa: B018 - urlsplit only validates the port when read
        except ValueError:
            raise ValueError("has an invalid port") from None
        security = parse_qs(parts.query).get("security", ["starttls"])[-1]
        if security not in SMTP_SECURITY_MODES:
            raise ValueError("security= must be one of " + ", ".join(SMTP_SECURITY_MODES))
        return value

    @field_validator(
        "webhook_url",
        "ping_url",
        "ping_url_monthly_invitations",
        "ping_url_reminders",
        "ping_url_cleanup",
        "ping_url_health_check",
    )
    @classmethod
    def _hook_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/")

    @field_validator("webhook_events", "event_command_events")
    @classmethod
    def _event_names(cls, value: str) -> str:
        names = [name.strip() for name in value.split(",") if name.strip()]
        unknown = [name for name in names if name != "*" and name not in KNOWN_EVENTS]
        if unknown:
            known = ", ".join(sorted(KNOWN_EVENTS))
            raise ValueError(f"unknown event(s) {', '.join(unknown)}; known: {known} or *")
        return ",".join(names)

    @field_validator("alert_email")
    @classmethod
    def _alert_addresses(cls, value: str | None) -> str | None:
        if not value:
            return None
        addresses = [a.strip() for a in value.split(",") if a.strip()]
        if not addresses or any("@" not in a or any(c in a for c in " <>\r\n;") for a in addresses):
            raise ValueError("must be one or more plain e-mail addresses, comma-separated")
        return ",".join(addresses)

    @field_validator("app_base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/")

    @field_validator("email_templates_dir")
    @classmethod
    def _templates_dir(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_dir():
            raise ValueError("must be an existing folder of templates (invitation/, reminder/)")
        return value

    @field_validator("email_unsubscribe_mailto")
    @classmethod
    def _unsubscribe_mailto(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip()
        # It goes into a header as mailto:{address}?subject=...: plain ASCII,
        # and nothing a mailto: URI would read as a query or an escape.
        if not value.isascii() or value.count("@") != 1 or any(c in value for c in "?%#&=/"):
            raise ValueError("must be a plain ASCII e-mail address such as unsubscribe@example.org")
        return cls._from_address(value)

    @field_validator("email_from_address")
    @classmethod
    def _from_address(cls, value: str) -> str:
        if "@" not in value or any(ch in value for ch in "\r\n <>,"):
            raise ValueError("must be a plain e-mail address such as noreply@example.org")
        return value

    # Cross-field rules are field validators over the fields declared before
    # them (ValidationInfo.data), so they are reported together with every
    # other bad variable instead of only after all fields are valid.
    @field_validator("second_reminder_days")
    @classmethod
    def _second_after_first(cls, value: int, info: ValidationInfo) -> int:
        first = info.data.get("first_reminder_days")
        if first is not None and value <= first:
            raise ValueError(f"must be greater than SCHEDULER_FIRST_REMINDER_DAYS ({first})")
        return value

    @field_validator("email_outbox_dir")
    @classmethod
    def _outbox_for_file_transport(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        if value is None and info.data.get("email_transport") == "file":
            raise ValueError("required when EMAIL_TRANSPORT=file")
        return value

    # Derived values -------------------------------------------------------

    @property
    def database_name(self) -> str:
        path = urlsplit(self.mongodb_uri).path.lstrip("/")
        return path.split("?", 1)[0] or "formafriend"

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def secret_values(self) -> list[str]:
        """Every secret string, raw and URL-decoded, for log redaction."""
        secrets: list[str] = []
        for url in (self.mongodb_uri, self.smtp_url, self.smtp_fallback_url):
            password = urlsplit(url).password if url else None
            if password:
                secrets.extend({password, unquote(password)})
        if self.webhook_secret:
            secrets.append(self.webhook_secret)
        for name in SECRET_PATHS:
            url = getattr(self, field_of(name))
            if url:
                parts = urlsplit(url)
                secrets += [p for p in (parts.path, parts.query) if len(p) > 1]
                if parts.password:
                    secrets.extend({parts.password, unquote(parts.password)})
        return secrets

    @property
    def local_state_dir(self) -> Path:
        """SCHEDULER_STATE_DIR, else systemd's StateDirectory, else the XDG state home."""
        if self.state_dir is not None:
            return self.state_dir
        if os.environ.get("STATE_DIRECTORY"):
            return Path(os.environ["STATE_DIRECTORY"].split(":")[0])
        xdg = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
        return Path(xdg) / "formafriend-scheduler"

    def ping_url_for(self, job_type: str) -> str | None:
        """The job's own ping URL, else the shared one."""
        own: str | None = getattr(self, "ping_url_" + job_type.replace("-", "_"), None)
        return own or self.ping_url

    @staticmethod
    def event_set(value: str) -> frozenset[str]:
        return frozenset(name for name in value.split(",") if name)

    def public_view(self) -> dict[str, Any]:
        """The effective configuration by environment name, secrets masked."""
        view: dict[str, Any] = {}
        for name, field in type(self).model_fields.items():
            env_name = env_name_of(name)
            value = getattr(self, name)
            if isinstance(value, Path):
                value = str(value)
            if env_name in SECRET_VARIABLES and isinstance(value, str):
                value = mask_url(value)
            elif env_name in SECRET_WHOLE and value:
                value = MASK
            elif env_name in SECRET_PATHS and isinstance(value, str):
                value = mask_url_path(value)
            view[env_name] = value
            del field
        return view


def env_name_of(field_name: str) -> str:
    alias = Settings.model_fields[field_name].validation_alias
    assert isinstance(alias, AliasChoices)
    first = alias.choices[0]
    assert isinstance(first, str)
    return first


def field_of(env_name: str) -> str:
    return next(name for name in Settings.model_fields if env_name_of(name) == env_name)


def mask_url_path(url: str) -> str:
    """Keep scheme, host and port; credentials and a token in the path or
    query become ***."""
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    netloc = f"{MASK}@{host}" if "@" in parts.netloc else host
    path = "/" + MASK if parts.path.strip("/") or parts.query else ""
    return urlunsplit(parts._replace(netloc=netloc, path=path, query="", fragment=""))


def mask_url(url: str) -> str:
    """Replace the password of a URL (MongoDB or SMTP) with ***."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    userinfo = quote(unquote(parts.username or ""), safe="") + ":" + MASK
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{userinfo}@{host}"))


class IsolatedSettings(Settings):
    """Settings from the given values and defaults only: no environment, no
    env file. For the demo, which must not pick up (and write to) the
    operator's real database, Prometheus textfile or alert sinks."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


def isolated_settings(**overrides: Any) -> Settings:
    """IsolatedSettings from `overrides` (field names); ConfigError if invalid."""
    try:
        return IsolatedSettings(**{env_name_of(k): v for k, v in overrides.items()})
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None


def load_settings(env_file: Path | None = None, **overrides: Any) -> Settings:
    """Build Settings from the environment, an env file (`.env` in the working
    directory unless `env_file` names one) and `overrides` (field names).

    Raises ConfigError naming every bad variable; secrets are never echoed.
    """
    if env_file is not None:
        if env_file.is_dir():
            raise ConfigError([f"--env-file {env_file}: is a directory, not a KEY=VALUE file"])
        if not env_file.is_file():
            raise ConfigError([f"--env-file {env_file}: no such file"])
        if not os.access(env_file, os.R_OK):
            raise ConfigError(
                [f"--env-file {env_file}: not readable by this user (run as the scheduler's user)"]
            )
    values = {env_name_of(k): v for k, v in overrides.items()}
    try:
        if env_file is not None:
            return Settings(_env_file=env_file, **values)  # type: ignore[call-arg]
        return Settings(**values)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None
    except UnicodeDecodeError as exc:
        name = f"--env-file {env_file}" if env_file is not None else "./.env"
        where = f"byte {exc.start}: {exc.object[exc.start : exc.start + 1]!r}"
        raise ConfigError([f"{name}: not UTF-8 text ({where})"]) from None


def _describe(exc: ValidationError) -> list[str]:
    problems = []
    for error in exc.errors():
        location = [str(part) for part in error["loc"]]
        message = str(error["msg"]).removeprefix("Value error, ")
        if not location:  # a model-level rule: its message names the variables
            problems.append(message)
            continue
        name = location[0]
        if name in Settings.model_fields:  # a default failed a cross-field rule
            name = env_name_of(name)
        if name in SECRETS or error.get("input") is None:
            problems.append(f"{name}: {message}")
        else:
            problems.append(f"{name}: {message} (got {error['input']!r})")
    return problems

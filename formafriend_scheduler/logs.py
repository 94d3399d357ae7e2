"""Logging fit for where the command runs: readable text on a terminal, one
JSON object per line under cron or systemd (journald keeps them as is)."""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from formafriend_scheduler.redact import Redactor

LogFormat = Literal["auto", "text", "json"]
ROOT = "formafriend_scheduler"


_TRACEBACKS = logging.Formatter()


class RedactingFilter(logging.Filter):
    """Renders each record's message once, with secrets masked."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self._redact = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self._redact(record.getMessage())
        record.args = None
        if record.exc_info:
            # Tracebacks quote arguments and messages: render and mask them here,
            # so no formatter ever prints the raw exception.
            record.exc_text = self._redact(_TRACEBACKS.formatException(record.exc_info))
            record.exc_info = None
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            record.fields = json.loads(self._redact(json.dumps(fields, default=str)))
        return True


class JsonLinesFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            line.update(fields)
        if record.exc_text:
            line["traceback"] = record.exc_text
        return json.dumps(line, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(message)s", "%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict) and fields:
            text += " " + " ".join(f"{k}={_short(v)}" for k, v in fields.items())
        return text


def _short(value: Any) -> str:
    text = (
        json.dumps(value, default=str, ensure_ascii=False) if not isinstance(value, str) else value
    )
    return text if len(text) <= 120 else text[:119] + "…"


@dataclass(frozen=True)
class LogSetup:
    """How a process logs (level, format, secrets to mask), picklable, so that
    each worker process of a run logs exactly as its parent does."""

    level: str
    log_format: Literal["text", "json"]
    secrets: tuple[str, ...] = ()

    def apply(self) -> None:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonLinesFormatter() if self.log_format == "json" else TextFormatter())
        handler.addFilter(RedactingFilter(Redactor(self.secrets)))
        setattr(handler, "log_setup", self)  # noqa: B010 - read back by current_setup()
        logger = logging.getLogger(ROOT)
        for old in list(logger.handlers):
            logger.removeHandler(old)
        logger.addHandler(handler)
        logger.setLevel(self.level)
        logger.propagate = False


def current_setup() -> LogSetup | None:
    """The setup this process's package logger was configured with, if any."""
    for handler in logging.getLogger(ROOT).handlers:
        setup = getattr(handler, "log_setup", None)
        if isinstance(setup, LogSetup):
            return setup
    return None


def configure_logging(
    *, level: str | None, log_format: LogFormat, verbose: bool, redactor: Redactor
) -> LogSetup:
    """Send the package's logs to stderr.

    Under cron a successful run must print nothing (cron mails any output), so
    off a terminal the default level is WARNING; `--verbose` or `--log-level`
    turns the info lines (events, progress) back on.
    """
    on_terminal = sys.stderr.isatty()
    if log_format == "auto":
        log_format = "text" if on_terminal else "json"
    if level is None:
        level = "INFO" if (verbose or on_terminal) else "WARNING"
    setup = LogSetup(level.upper(), log_format, redactor.secrets)
    setup.apply()
    return setup

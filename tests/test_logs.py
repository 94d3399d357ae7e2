"""Logs: JSON lines off a terminal, quiet by default under cron, secrets masked."""

from __future__ import annotations

import io
import json
import logging

import pytest

from formafriend_scheduler.logs import ROOT, configure_logging
from formafriend_scheduler.redact import Redactor


def capture(monkeypatch: pytest.MonkeyPatch, **options: object) -> io.StringIO:
    stream = io.StringIO()  # not a terminal, like cron's or journald's stderr
    monkeypatch.setattr("sys.stderr", stream)
    configure_logging(**options)  # type: ignore[arg-type]
    return stream


def test_json_lines_carry_the_event_fields_with_secrets_masked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stream = capture(
        monkeypatch, level="INFO", log_format="auto", verbose=False, redactor=Redactor(["pw-123"])
    )
    logging.getLogger(f"{ROOT}.test").info(
        "job-failed", extra={"fields": {"event": "job-failed", "error": "auth pw-123 refused"}}
    )
    line = json.loads(stream.getvalue())
    assert line["level"] == "info"
    assert line["event"] == "job-failed"
    assert line["error"] == "auth *** refused"
    assert "time" in line and line["logger"] == f"{ROOT}.test"


def test_off_a_terminal_info_is_silent_unless_verbose(monkeypatch: pytest.MonkeyPatch) -> None:
    quiet = capture(monkeypatch, level=None, log_format="auto", verbose=False, redactor=Redactor())
    logging.getLogger(ROOT).info("progress")
    logging.getLogger(ROOT).warning("trouble")
    assert [json.loads(line)["message"] for line in quiet.getvalue().splitlines()] == ["trouble"]

    verbose = capture(monkeypatch, level=None, log_format="auto", verbose=True, redactor=Redactor())
    logging.getLogger(ROOT).info("progress")
    assert json.loads(verbose.getvalue())["message"] == "progress"


def test_text_format_on_request(monkeypatch: pytest.MonkeyPatch) -> None:
    stream = capture(
        monkeypatch, level="INFO", log_format="text", verbose=False, redactor=Redactor()
    )
    logging.getLogger(ROOT).info("job-started", extra={"fields": {"jobId": "cleanup-1"}})
    assert "job-started jobId=cleanup-1" in stream.getvalue()

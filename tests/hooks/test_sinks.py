"""Webhook, command, e-mail and ping sinks against real servers and a real shell."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from formafriend_scheduler.clock import FrozenClock
from formafriend_scheduler.config import SECRETS
from formafriend_scheduler.hooks.command import CommandSink
from formafriend_scheduler.hooks.events import EventBus
from formafriend_scheduler.hooks.mailer import AlertEmailSink
from formafriend_scheduler.hooks.pings import PingSink
from formafriend_scheduler.hooks.webhook import WebhookSink, signature
from formafriend_scheduler.mail.transports import SmtpEndpoint, SmtpTransport
from tests.httpserver import HttpServer
from tests.smtpserver import SmtpServer, free_port

CLOCK = FrozenClock(datetime(2027, 1, 5, 17, 0, tzinfo=UTC))
FAILURES = frozenset({"job-failed", "alerts-triggered"})


def webhook(url: str, **options: object) -> WebhookSink:
    base: dict[str, object] = {
        "secret": None,
        "timeout": 2.0,
        "attempts": 3,
        "clock_seconds": lambda: 1_800_000_000.0,
        "first_wait": 0.01,
    }
    return WebhookSink(url, FAILURES, **{**base, **options})  # type: ignore[arg-type]


def test_a_webhook_posts_the_event_as_json(http_server: HttpServer) -> None:
    bus = EventBus(CLOCK, [webhook(http_server.url + "/hook")])
    bus.emit("job-failed", jobId="cleanup-1", jobType="cleanup", error={"message": "boom"})

    (request,) = http_server.requests
    assert (request.method, request.path) == ("POST", "/hook")
    assert request.headers["content-type"] == "application/json"
    assert request.headers["x-faf-event"] == "job-failed"
    assert json.loads(request.body) == {
        "event": "job-failed",
        "at": "2027-01-05T17:00:00+00:00",
        "jobId": "cleanup-1",
        "jobType": "cleanup",
        "error": {"message": "boom"},
    }


def test_only_the_chosen_events_are_posted(http_server: HttpServer) -> None:
    bus = EventBus(CLOCK, [webhook(http_server.url)])
    bus.emit("job-started", jobId="x", type="cleanup")
    bus.emit("job-completed", jobId="x", status="success")
    assert http_server.requests == []


def test_the_signature_covers_timestamp_and_body(http_server: HttpServer) -> None:
    bus = EventBus(CLOCK, [webhook(http_server.url, secret="s3cret")])
    bus.emit("alerts-triggered", alerts=[], healthData={})
    (request,) = http_server.requests
    timestamp = request.headers["x-faf-timestamp"]
    assert timestamp == "1800000000"
    assert request.headers["x-faf-signature"] == signature("s3cret", timestamp, request.body)
    assert request.headers["x-faf-signature"] != signature("other", timestamp, request.body)


def test_a_5xx_is_retried_with_backoff_and_a_4xx_is_not(http_server: HttpServer) -> None:
    http_server.answer(500, 503)
    EventBus(CLOCK, [webhook(http_server.url)]).emit("job-failed", jobId="a")
    assert len(http_server.requests) == 3  # two refusals, then accepted

    http_server.answer(404)
    EventBus(CLOCK, [webhook(http_server.url)]).emit("job-failed", jobId="b")
    assert len(http_server.requests) == 4  # no retry of a 404


def test_a_dead_webhook_only_costs_its_attempts(caplog: object) -> None:
    dead = f"http://127.0.0.1:{free_port()}/hook"
    started = time.monotonic()
    EventBus(CLOCK, [webhook(dead, attempts=2)]).emit("job-failed", jobId="a")  # no exception
    assert time.monotonic() - started < 5


def test_a_shell_command_gets_the_event_on_stdin(tmp_path: Path) -> None:
    out = tmp_path / "event.json"
    sink = CommandSink(f'cat > {out}; echo "$FAF_EVENT" > {out}.name', FAILURES, timeout=10)
    EventBus(CLOCK, [sink]).emit("job-failed", jobId="cleanup-1")
    assert json.loads(out.read_text())["jobId"] == "cleanup-1"
    assert (tmp_path / "event.json.name").read_text().strip() == "job-failed"


def test_the_command_does_not_inherit_the_schedulers_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SMTP_URL", "smtp://u:pa55-smtp@mail")
    monkeypatch.setenv("LANG", "C.UTF-8")
    out = tmp_path / "env"
    sink = CommandSink(f"env > {out}", FAILURES, timeout=10, hidden_variables=SECRETS)
    EventBus(CLOCK, [sink]).emit("job-failed", jobId="x")
    seen = out.read_text()
    assert "SMTP_URL=" not in seen and "pa55-smtp" not in seen
    assert "LANG=C.UTF-8" in seen


def test_a_failing_or_hanging_command_never_raises(tmp_path: Path) -> None:
    bus = EventBus(
        CLOCK,
        [
            CommandSink("exit 3", FAILURES, timeout=5),
            CommandSink("sleep 30", FAILURES, timeout=0.2),
        ],
    )
    started = time.monotonic()
    bus.emit("job-failed", jobId="x")
    assert time.monotonic() - started < 5


def test_alerts_are_mailed_to_the_operators(smtp_server: SmtpServer) -> None:
    def transport() -> SmtpTransport:
        return SmtpTransport(SmtpEndpoint.parse(smtp_server.url), attempts=1)

    sink = AlertEmailSink(
        ["ops@x.org", "oncall@x.org"], "noreply@form-a-friend.com", transport, CLOCK.now
    )
    bus = EventBus(CLOCK, [sink])
    bus.emit("job-started", jobId="x", type="cleanup")  # not an alert: no mail
    bus.emit(
        "alerts-triggered",
        alerts=[{"type": "smtp", "severity": "critical", "message": "SMTP server down"}],
        healthData={},
    )
    assert smtp_server.recipients() == {"ops@x.org": 1, "oncall@x.org": 1}
    message = smtp_server.received[0].message
    assert message["Subject"] == "[formafriend-scheduler] CRITICAL: SMTP server down"
    assert "SMTP server down" in message.get_body(("plain",)).get_content()


def test_pings_mark_start_success_and_failure_with_the_run_id(http_server: HttpServer) -> None:
    urls = {"cleanup": http_server.url + "/ping/abc", "reminders": None}
    pings = PingSink(urls.get, timeout=2, attempts=1)
    bus = EventBus(CLOCK, [pings])
    bus.emit("job-started", jobId="cleanup-1", type="cleanup")
    bus.emit("job-completed", jobId="cleanup-1", type="cleanup", status="success", exitCode=0)
    bus.emit("job-started", jobId="cleanup-2", type="cleanup")
    bus.emit("job-completed", jobId="cleanup-2", type="cleanup", status="partial", exitCode=3)
    bus.emit("job-failed", jobId="cleanup-3", jobType="cleanup", exitCode=1)
    bus.emit("job-started", jobId="reminders-1", type="reminders")  # no URL for reminders

    seen = [(r.path, r.query["rid"][0]) for r in http_server.requests]
    assert seen == [
        ("/ping/abc/start", "cleanup-1"),
        ("/ping/abc", "cleanup-1"),
        ("/ping/abc/start", "cleanup-2"),
        ("/ping/abc/3", "cleanup-2"),
        ("/ping/abc/1", "cleanup-3"),
    ]

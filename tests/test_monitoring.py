"""Done-when of monitoring, as an operator sees it: a run fails because the
mail server is down, the webhook, the ping, health-check and the Prometheus
file all say so; after recovery the alert resolves."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

from formafriend_scheduler.cli.app import app
from tests import factories
from tests.httpserver import HttpServer
from tests.jobs.monthly_helpers import DUE_WHENEVER
from tests.smtpserver import SmtpServer


def samples(path: Path) -> dict[tuple[str, str], float]:
    values = {}
    for family in text_string_to_metric_families(path.read_text()):
        for sample in family.samples:
            values[(sample.name, sample.labels.get("job", ""))] = sample.value
    return values


def webhook_events(http_server: HttpServer) -> list[dict[str, object]]:
    return [json.loads(r.body) for r in http_server.requests if r.path == "/hook"]


def test_a_failing_run_is_seen_everywhere_and_its_alert_resolves_after_recovery(
    mongodb_uri: str,
    smtp_server: SmtpServer,
    http_server: HttpServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    prom = tmp_path / "node_exporter" / "formafriend.prom"
    for name, value in {
        "MONGODB_URI": mongodb_uri,
        "SMTP_URL": smtp_server.url,
        **DUE_WHENEVER,
        "SCHEDULER_WEBHOOK_URL": http_server.url + "/hook",
        "SCHEDULER_WEBHOOK_SECRET": "hook-secret",
        "SCHEDULER_WEBHOOK_ATTEMPTS": "1",
        "SCHEDULER_PING_URL_MONTHLY_INVITATIONS": http_server.url + "/ping/monthly",
        "SCHEDULER_PING_URL_HEALTH_CHECK": http_server.url + "/ping/health",
        "SCHEDULER_PROMETHEUS_TEXTFILE": str(prom),
        "SCHEDULER_MONGODB_RETRY_ATTEMPTS": "2",
    }.items():
        monkeypatch.setenv(name, value)
    store = factories.one_user_with_contacts(mongodb_uri)
    cli = CliRunner()
    smtp_server.stop()  # Given the mail server is down,

    # when the monthly run goes out,
    failed = cli.invoke(app, ["monthly-invitations", "--workers", "0", "--json"])
    run_id = json.loads(failed.stdout)["jobId"]

    # then it fails,
    assert failed.exit_code == 1
    events = webhook_events(http_server)
    # the webhook gets job-failed and the run's alert,
    assert [e["event"] for e in events] == ["job-failed", "alerts-triggered"]
    assert events[0]["jobId"] == run_id
    assert events[1]["alerts"][0]["key"] == "run:monthly-invitations:error-rate"
    # and the job record keeps every event of the run, the end-of-run alert too,
    record = store.jobs.get(run_id)
    assert record is not None
    assert [e["event"] for e in record["events"]] == [
        "job-started",
        "job-failed",
        "alerts-triggered",
    ]
    # the dead-man ping sees a start and a failure of the same run,
    pings = [
        (r.path, r.query["rid"][0]) for r in http_server.requests if r.path.startswith("/ping")
    ]
    assert pings == [("/ping/monthly/start", run_id), ("/ping/monthly/1", run_id)]
    # the Prometheus file shows it,
    metrics = samples(prom)
    assert metrics[("formafriend_scheduler_last_exit_code", "monthly-invitations")] == 1
    assert (
        "formafriend_scheduler_last_success_timestamp_seconds",
        "monthly-invitations",
    ) not in metrics
    # and health-check turns CRITICAL with the reason.
    health = cli.invoke(app, ["health-check"])
    assert health.exit_code == 2
    assert health.stdout.startswith("CRITICAL: unhealthy - ")
    assert "Connection refused" in health.stdout or "unreachable" in health.stdout
    assert samples(prom)[("formafriend_scheduler_health_status", "")] == 2
    health_pings = [r.path for r in http_server.requests if r.path.startswith("/ping/health")]
    assert health_pings == ["/ping/health/start", "/ping/health/2"]

    # After recovery,
    smtp_server.start()
    recovered = cli.invoke(app, ["monthly-invitations", "--workers", "0", "--json"])
    healthy = cli.invoke(app, ["health-check", "--json"])

    assert (
        recovered.exit_code == 0 and json.loads(recovered.stdout)["stats"]["sentInvitations"] == 3
    )
    assert json.loads(healthy.stdout)["status"] in ("healthy", "degraded")
    resolved = [e for e in webhook_events(http_server) if e["event"] == "alerts-resolved"]
    keys = {alert["key"] for event in resolved for alert in event["alerts"]}  # type: ignore[union-attr]
    assert {"run:monthly-invitations:error-rate", "health:smtp", "health:monthly-run"} <= keys
    assert samples(prom)[("formafriend_scheduler_last_exit_code", "monthly-invitations")] == 0
    assert samples(prom)[("formafriend_scheduler_items_sent_total", "monthly-invitations")] == 3
    # Every webhook was signed with the shared secret.
    assert all("x-faf-signature" in r.headers for r in http_server.requests if r.path == "/hook")

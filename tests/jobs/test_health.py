"""health-check: each check's status, the worst one wins, a record is kept."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from formafriend_scheduler.clock import FrozenClock
from formafriend_scheduler.config import Settings, load_settings
from formafriend_scheduler.errors import HealthCode, StoreError
from formafriend_scheduler.hooks.events import EventBus
from formafriend_scheduler.jobs.health import HealthReport, run_health_check
from formafriend_scheduler.store import Store, connect
from tests.sinks import CollectingSink

GiB = 1024**3


def memory(percent: float) -> Any:
    return lambda: SimpleNamespace(percent=percent, total=24 * GiB)


def smtp_answers(url: str) -> str:
    return "smtp:test answered NOOP with 250"


def check_health(*args: Any, **kwargs: Any) -> HealthReport:
    """run_health_check with an SMTP server that answers."""
    kwargs.setdefault("smtp_probe", smtp_answers)
    return run_health_check(*args, **kwargs)


def check(report: HealthReport, name: str) -> Any:
    return next(c for c in report.checks if c.name == name)


def healthy_store(store: Store) -> Store:
    store.indexes.ensure()
    return store


def test_a_fresh_initialised_database_is_healthy_and_recorded(
    settings: Settings, store: Store, clock: FrozenClock
) -> None:
    report = check_health(settings, healthy_store(store), clock, memory(40))

    assert report.code is HealthCode.OK
    assert report.status == "healthy"
    assert [c.name for c in report.checks] == [
        "mongodb",
        "indexes",
        "locks",
        "error-rate",
        "monthly-run",
        "stale-success",
        "queued-backlog",
        "smtp",
        "host-memory",
    ]
    assert check(report, "mongodb").details["latencyMs"] >= 0
    latest = store.health.latest()
    assert latest is not None and latest["status"] == "healthy"


def test_missing_indexes_are_a_warning_that_points_to_init_db(
    settings: Settings, store: Store, clock: FrozenClock
) -> None:
    report = check_health(settings, store, clock, memory(40))
    assert check(report, "indexes").code is HealthCode.WARNING
    assert "init-db" in check(report, "indexes").summary
    assert report.status == "degraded"


def test_an_index_the_apps_sync_indexes_dropped_is_named_with_its_fix(
    settings: Settings, store: Store, clock: FrozenClock
) -> None:
    healthy_store(store)
    # What Mongoose's syncIndexes() does to an index its schemas do not declare.
    dropped = next(
        name
        for name, info in store.db["invitations"].index_information().items()
        if info["key"] == [("reminders.type", 1)]
    )
    store.db["invitations"].drop_index(dropped)

    indexes = check(check_health(settings, store, clock, memory(40)), "indexes")

    assert indexes.code is HealthCode.WARNING
    assert "invitations { reminders.type: 1 }" in indexes.summary
    assert "syncIndexes()" in indexes.summary and "init-db" in indexes.summary
    assert indexes.details["droppedBySyncIndexes"] == ["invitations { reminders.type: 1 }"]
    healthy_store(store)  # what init-db does
    assert check(check_health(settings, store, clock, memory(40)), "indexes").code is HealthCode.OK


def test_a_lock_held_past_expiry_and_a_stuck_run_are_warnings(
    settings: Settings, store: Store, clock: FrozenClock
) -> None:
    healthy_store(store)
    store.locks.try_acquire("cleanup", "dead-run", "h", 1, clock.now(), timedelta(seconds=60))
    store.db["scheduler_jobs"].insert_one(
        {"_id": "dead-run", "type": "cleanup", "status": "running", "startedAt": clock.now()}
    )
    clock.advance(timedelta(minutes=5))

    report = check_health(settings, store, clock, memory(40))

    locks = check(report, "locks")
    assert locks.code is HealthCode.WARNING
    assert locks.details["stuckRuns"] == ["dead-run"]
    assert len(locks.details["heldPastExpiry"]) == 1


def test_an_error_rate_over_the_threshold_is_a_warning(
    settings: Settings, store: Store, clock: FrozenClock
) -> None:
    healthy_store(store)
    now = clock.now()
    runs = [{"type": "cleanup", "status": "success", "startedAt": now - timedelta(hours=1)}] * 9
    runs += [{"type": "cleanup", "status": "failed", "startedAt": now - timedelta(hours=1)}]
    store.db["scheduler_jobs"].insert_many([dict(run) for run in runs])

    report = check_health(settings, store, clock, memory(40))

    rate = check(report, "error-rate")
    assert rate.code is HealthCode.WARNING  # 10 % > 5 %
    assert rate.details["errorRate"] == 0.1


def test_old_failures_outside_the_window_do_not_count(
    settings: Settings, store: Store, clock: FrozenClock
) -> None:
    healthy_store(store)
    store.db["scheduler_jobs"].insert_one(
        {"type": "cleanup", "status": "failed", "startedAt": clock.now() - timedelta(days=2)}
    )
    report = check_health(settings, store, clock, memory(40))
    assert check(report, "error-rate").code is HealthCode.OK


def test_the_last_monthly_run_decides_its_check(
    settings: Settings, store: Store, clock: FrozenClock
) -> None:
    healthy_store(store)
    now = clock.now()
    assert (
        check(check_health(settings, store, clock, memory(40)), "monthly-run").code is HealthCode.OK
    )

    store.db["scheduler_jobs"].insert_one(
        {
            "_id": "m1",
            "type": "monthly-invitations",
            "status": "failed",
            "startedAt": now - timedelta(hours=2),
        }
    )
    failed = check_health(settings, store, clock, memory(40))
    assert check(failed, "monthly-run").code is HealthCode.CRITICAL
    assert failed.code is HealthCode.CRITICAL and failed.status == "unhealthy"

    store.db["scheduler_jobs"].insert_one(
        {
            "_id": "m2",
            "type": "monthly-invitations",
            "status": "partial",
            "startedAt": now - timedelta(hours=1),
        }
    )
    assert (
        check(check_health(settings, store, clock, memory(40)), "monthly-run").code
        is HealthCode.WARNING
    )

    store.db["scheduler_jobs"].insert_one(
        {
            "_id": "m3",
            "type": "monthly-invitations",
            "status": "success",
            "startedAt": now - timedelta(minutes=5),
        }
    )
    assert (
        check(check_health(settings, store, clock, memory(40)), "monthly-run").code is HealthCode.OK
    )

    clock.advance(timedelta(days=40))
    stale = check(check_health(settings, store, clock, memory(40)), "monthly-run")
    assert stale.code is HealthCode.WARNING and "40 day(s) ago" in stale.summary


def test_host_memory_against_the_alert_threshold(
    settings: Settings, store: Store, clock: FrozenClock
) -> None:
    healthy_store(store)
    assert (
        check(check_health(settings, store, clock, memory(79)), "host-memory").code is HealthCode.OK
    )
    assert (
        check(check_health(settings, store, clock, memory(85)), "host-memory").code
        is HealthCode.WARNING
    )
    assert (
        check(check_health(settings, store, clock, memory(97)), "host-memory").code
        is HealthCode.CRITICAL
    )


def test_an_unreachable_database_is_critical_and_the_rest_unknown(clock: FrozenClock) -> None:
    settings = load_settings(mongodb_uri="mongodb://127.0.0.1:9/x", mongodb_timeout_seconds=0.2)
    report = check_health(settings, connect(settings, retry_attempts=1), clock, memory(40))
    assert check(report, "mongodb").code is HealthCode.CRITICAL
    database_checks = [c for c in report.checks if c.name not in ("mongodb", "smtp", "host-memory")]
    assert {c.code for c in database_checks} == {HealthCode.UNKNOWN}
    assert check(report, "smtp").code is HealthCode.OK  # checked without the database
    assert report.code is HealthCode.CRITICAL


def test_a_refused_login_is_critical_not_a_crash(
    settings: Settings, store: Store, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(self: Store) -> float:
        raise StoreError("OperationFailure: Authentication failed.")

    monkeypatch.setattr(Store, "ping", refuse)
    report = check_health(settings, store, clock, memory(40))
    assert check(report, "mongodb").code is HealthCode.CRITICAL
    assert "Authentication failed" in check(report, "mongodb").summary


def test_a_degraded_report_emits_alerts_triggered(
    settings: Settings, store: Store, clock: FrozenClock
) -> None:
    sink = CollectingSink()
    check_health(settings, store, clock, memory(40), events=EventBus(clock, [sink]))

    assert sink.names == ["job-started", "alerts-triggered", "job-completed"]  # indexes missing
    payload = sink.events[1].payload
    assert payload["alerts"] == [
        {
            "key": "health:indexes",
            "scope": "health:indexes",
            "type": "indexes",
            "severity": "warning",
            "message": check_summary(payload, "indexes"),
        }
    ]
    assert payload["healthData"]["status"] == "degraded"


def check_summary(payload: dict[str, Any], name: str) -> str:
    return str(next(c["summary"] for c in payload["healthData"]["checks"] if c["name"] == name))


def test_a_healthy_report_emits_no_alert(
    settings: Settings, store: Store, clock: FrozenClock
) -> None:
    sink = CollectingSink()
    check_health(settings, healthy_store(store), clock, memory(40), EventBus(clock, [sink]))
    assert sink.names == ["job-started", "job-completed"]
    assert (
        sink.events[1].payload["exitCode"] == 0 and sink.events[1].payload["type"] == "health-check"
    )


def test_alerts_raised_while_the_database_is_down_go_out_once_and_resolve_when_it_is_back(
    settings: Settings, store: Store, clock: FrozenClock
) -> None:
    sink = CollectingSink()
    events = EventBus(clock, [sink])
    down = load_settings(mongodb_uri="mongodb://127.0.0.1:9/x", mongodb_timeout_seconds=0.2)
    unreachable = connect(down, retry_attempts=1)
    for _ in range(3):  # every 5 minutes, within the hour of SCHEDULER_ALERT_REPEAT_MINUTES
        check_health(down, unreachable, clock, memory(40), events=events)
        clock.advance(timedelta(minutes=5))

    triggered = [event for event in sink.events if event.name == "alerts-triggered"]
    assert len(triggered) == 1
    raised = {alert["key"] for alert in triggered[0].payload["alerts"]}
    assert "health:mongodb" in raised

    sink.events.clear()
    check_health(settings, healthy_store(store), clock, memory(40), events=events)
    assert sink.names == ["job-started", "alerts-resolved", "job-completed"]
    assert {alert["key"] for alert in sink.events[1].payload["alerts"]} == raised

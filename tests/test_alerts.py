"""Alert rules fire and resolve; a lasting alert is re-sent at most every interval."""

from __future__ import annotations

from datetime import timedelta

from formafriend_scheduler.alerts import RUN_RULES, Alert, AlertTracker, run_alerts, run_scope
from formafriend_scheduler.clock import FrozenClock
from formafriend_scheduler.config import Settings
from formafriend_scheduler.hooks.events import EventBus
from formafriend_scheduler.store import Store
from tests.sinks import CollectingSink

MB = 1024 * 1024


def alert(
    key: str = "run:cleanup:error-rate", scope: str = "run:cleanup", severity: str = "error"
) -> Alert:
    return Alert(key, scope, key.rsplit(":", 1)[-1], severity, "something is wrong")


def tracker(
    settings: Settings, store: Store, clock: FrozenClock
) -> tuple[AlertTracker, CollectingSink]:
    sink = CollectingSink()
    return AlertTracker(store.alerts, settings, clock, EventBus(clock, [sink])), sink


def test_a_new_alert_is_sent_and_a_lasting_one_only_after_the_interval(
    settings: Settings, store: Store, clock: FrozenClock
) -> None:
    alerts, sink = tracker(settings, store, clock)  # repeat every 60 minutes
    alerts.report([alert()], ["run:cleanup"], {})
    clock.advance(timedelta(minutes=59))
    alerts.report([alert()], ["run:cleanup"], {})
    clock.advance(timedelta(minutes=2))
    alerts.report([alert()], ["run:cleanup"], {})

    assert sink.names == ["alerts-triggered", "alerts-triggered"]  # at 0 and 61 minutes
    assert sink.events[0].payload["alerts"][0]["key"] == "run:cleanup:error-rate"


def test_a_change_of_severity_is_sent_at_once(
    settings: Settings, store: Store, clock: FrozenClock
) -> None:
    alerts, sink = tracker(settings, store, clock)
    alerts.report([alert(severity="warning")], ["run:cleanup"], {})
    clock.advance(timedelta(minutes=5))
    alerts.report([alert(severity="critical")], ["run:cleanup"], {})
    clock.advance(timedelta(minutes=5))
    alerts.report([alert(severity="critical")], ["run:cleanup"], {})

    assert sink.names == ["alerts-triggered", "alerts-triggered"]
    assert sink.events[1].payload["alerts"][0]["severity"] == "critical"


def test_a_cleared_alert_sends_a_resolved_event_once(
    settings: Settings, store: Store, clock: FrozenClock
) -> None:
    alerts, sink = tracker(settings, store, clock)
    alerts.report([alert()], ["run:cleanup"], {})
    clock.advance(timedelta(minutes=5))
    alerts.report([], ["run:cleanup"], {"jobId": "cleanup-2"})
    alerts.report([], ["run:cleanup"], {})

    assert sink.names == ["alerts-triggered", "alerts-resolved"]
    assert sink.events[1].payload["alerts"][0]["key"] == "run:cleanup:error-rate"
    assert sink.events[1].payload["healthData"] == {"jobId": "cleanup-2"}


def test_an_alert_that_comes_back_is_sent_again_at_once(
    settings: Settings, store: Store, clock: FrozenClock
) -> None:
    alerts, sink = tracker(settings, store, clock)
    alerts.report([alert()], ["run:cleanup"], {})
    alerts.report([], ["run:cleanup"], {})
    clock.advance(timedelta(minutes=1))
    alerts.report([alert()], ["run:cleanup"], {})
    assert sink.names == ["alerts-triggered", "alerts-resolved", "alerts-triggered"]


def test_an_evaluation_resolves_only_its_own_scopes(
    settings: Settings, store: Store, clock: FrozenClock
) -> None:
    alerts, sink = tracker(settings, store, clock)
    alerts.report([alert("run:reminders:workers", "run:reminders")], ["run:reminders"], {})
    alerts.report([], ["run:cleanup"], {})  # a cleanup run says nothing about reminders
    assert sink.names == ["alerts-triggered"]


def test_each_run_rule(settings: Settings) -> None:
    # SCHEDULER_ERROR_RATE_THRESHOLD 5 %, MAX_MEMORY_MB 512 (alert at 80 %), 1 h duration
    quiet = run_alerts(settings, "monthly-invitations", {"sentInvitations": 100}, 60, 100 * MB)
    assert quiet.alerts == []
    assert len(quiet.scopes) == 4  # every rule evaluated, so each may resolve
    loud = run_alerts(
        settings,
        "monthly-invitations",
        {
            "sentInvitations": 90,
            "failedInvitations": 7,
            "bouncedInvitations": 3,
            "workerTimeouts": 1,
        },
        2800,  # 78 % of an hour
        450 * MB,  # 88 % of 512 MB
    )
    assert {a.type: a.severity for a in loud.alerts} == {
        "error-rate": "error",
        "memory": "warning",
        "duration": "warning",
        "workers": "error",
    }
    assert {a.scope for a in loud.alerts} == {
        run_scope("monthly-invitations", rule) for rule in RUN_RULES
    }
    over = run_alerts(settings, "reminders", {}, 10, 600 * MB)
    assert [(a.type, a.severity) for a in over.alerts] == [("memory", "critical")]


def test_the_error_rate_is_not_judged_when_nothing_was_attempted(settings: Settings) -> None:
    failing = {"sentInvitations": 0, "failedInvitations": 0}
    idle = run_alerts(settings, "monthly-invitations", failing, 1, 0)
    assert run_scope("monthly-invitations", "error-rate") not in idle.scopes
    stats = {"sentInvitations": 0, "failedInvitations": 9}
    dry = run_alerts(settings, "monthly-invitations", stats, 1, 0, dry_run=True)
    assert dry.alerts == [] and run_scope("monthly-invitations", "error-rate") not in dry.scopes


def test_an_error_rate_alert_survives_an_idle_run_and_clears_on_a_good_one(
    settings: Settings, store: Store, clock: FrozenClock
) -> None:
    alerts, sink = tracker(settings, store, clock)
    for stats in (
        {"sentInvitations": 1, "failedInvitations": 9},
        {"sentInvitations": 0},
        {"sentInvitations": 10},
    ):
        evaluation = run_alerts(settings, "monthly-invitations", stats, 1, 0)
        alerts.report(evaluation.alerts, evaluation.scopes, {})
    assert sink.names == ["alerts-triggered", "alerts-resolved"]

"""The single event-emission point: every sink sees every event; none can break a run."""

from __future__ import annotations

from datetime import UTC, datetime

from formafriend_scheduler.clock import FrozenClock
from formafriend_scheduler.hooks.events import Event, EventBus, completed_event_of
from tests.sinks import CollectingSink


class Broken:
    def handle(self, event: Event) -> None:
        raise ConnectionError("webhook down")


def test_each_sink_receives_the_event_even_after_a_failing_one() -> None:
    clock = FrozenClock(datetime(2027, 1, 5, 17, 0, tzinfo=UTC))
    collecting = CollectingSink()
    bus = EventBus(clock, [Broken(), collecting])

    event = bus.emit("job-started", jobId="cleanup-1", type="cleanup")

    assert collecting.events == [event]
    assert event.as_document() == {
        "event": "job-started",
        "at": clock.now(),
        "jobId": "cleanup-1",
        "type": "cleanup",
    }


def test_a_removed_sink_no_longer_receives_events() -> None:
    collecting = CollectingSink()
    bus = EventBus(FrozenClock(datetime(2027, 1, 1, tzinfo=UTC)), [])
    bus.add_sink(collecting)
    bus.remove_sink(collecting)
    bus.emit("job-started")
    assert collecting.events == []


def test_completed_event_names_follow_the_seed() -> None:
    assert completed_event_of("monthly-invitations") == "monthly-job-completed"
    assert completed_event_of("reminders") == "reminder-job-completed"
    assert completed_event_of("cleanup") == "cleanup-job-completed"

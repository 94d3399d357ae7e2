"""The single event-emission point and its log sink."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from formafriend_scheduler.clock import Clock

log = logging.getLogger(__name__)

# The seed's event names; the warning ones are logged above INFO so that they
# reach an operator even when a cron run is otherwise quiet.
JOB_STARTED = "job-started"
JOB_COMPLETED = "job-completed"
JOB_FAILED = "job-failed"
HIGH_MEMORY_USAGE = "high-memory-usage"
ALERTS_TRIGGERED = "alerts-triggered"
ALERTS_RESOLVED = "alerts-resolved"
WARNING_EVENTS = frozenset({JOB_FAILED, HIGH_MEMORY_USAGE, ALERTS_TRIGGERED})


def completed_event_of(job_type: str) -> str:
    """`monthly-invitations` -> `monthly-job-completed`, `cleanup` -> `cleanup-job-completed`."""
    stem = {"monthly-invitations": "monthly", "reminders": "reminder"}.get(job_type, job_type)
    return f"{stem}-job-completed"


@dataclass(frozen=True)
class Event:
    name: str
    at: datetime
    payload: dict[str, Any] = field(default_factory=dict)

    def as_document(self) -> dict[str, Any]:
        return {"event": self.name, "at": self.at, **self.payload}


class EventSink(Protocol):
    def handle(self, event: Event) -> None: ...


class LogSink:
    """Each event as one structured log record (one JSON line off a terminal)."""

    def handle(self, event: Event) -> None:
        level = logging.WARNING if event.name in WARNING_EVENTS else logging.INFO
        log.log(level, event.name, extra={"fields": {"event": event.name, **event.payload}})


class EventBus:
    def __init__(self, clock: Clock, sinks: list[EventSink] | None = None) -> None:
        self._clock = clock
        self._sinks: list[EventSink] = list(sinks) if sinks is not None else [LogSink()]

    def add_sink(self, sink: EventSink) -> None:
        self._sinks.append(sink)

    def remove_sink(self, sink: EventSink) -> None:
        self._sinks.remove(sink)

    def emit(self, name: str, **payload: Any) -> Event:
        event = Event(name=name, at=self._clock.now(), payload=payload)
        for sink in self._sinks:
            try:
                sink.handle(event)
            except Exception:  # a sink must never break the run that emits
                log.warning("event sink %s failed on %s", type(sink).__name__, name, exc_info=True)
        return event

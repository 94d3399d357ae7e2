"""The injectable clock: every piece of code asks a `Clock` for the time, so
tests can move time forward instead of sleeping."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware, in UTC."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards (for durations)."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()


class FrozenClock:
    """A clock that only moves when told to (tests, the demo's simulated days)."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("FrozenClock needs a timezone-aware start time")
        self._now = start.astimezone(UTC)
        self._monotonic = 0.0

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        return self._monotonic

    def advance(self, delta: timedelta) -> None:
        if delta < timedelta(0):
            raise ValueError("FrozenClock only moves forward")
        self._now += delta
        self._monotonic += delta.total_seconds()

    def set(self, moment: datetime) -> None:
        delta = moment.astimezone(UTC) - self._now
        if delta < timedelta(0):
            raise ValueError("FrozenClock only moves forward")
        self.advance(delta)


def to_utc(moment: datetime) -> datetime:
    """BSON dates come back naive (UTC) from some drivers: make them aware."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from formafriend_scheduler.clock import FrozenClock, to_utc


def test_a_frozen_clock_moves_only_forward_and_only_when_told() -> None:
    clock = FrozenClock(datetime(2027, 1, 5, 17, 0, tzinfo=UTC))
    clock.advance(timedelta(days=3))
    assert clock.now() == datetime(2027, 1, 8, 17, 0, tzinfo=UTC)
    assert clock.monotonic() == 3 * 86400
    with pytest.raises(ValueError, match="forward"):
        clock.set(datetime(2027, 1, 1, tzinfo=UTC))


def test_naive_bson_dates_are_utc() -> None:
    assert to_utc(datetime(2027, 1, 5, 17, 0)) == datetime(2027, 1, 5, 17, 0, tzinfo=UTC)

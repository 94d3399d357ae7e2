"""One send-rate limit shared by every worker process.

A shared double holds the next free send slot (on the system-wide monotonic
clock); each send reserves the slot under the shared lock and sleeps until it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


class RateLimiter:
    def __init__(
        self,
        per_second: float,
        next_slot: Any,  # multiprocessing.Value("d") (or any object with .value and .get_lock())
        *,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._interval = 1.0 / per_second if per_second > 0 else 0.0
        self._next_slot = next_slot
        self._monotonic = monotonic
        self._sleep = sleep

    def wait_turn(self) -> None:
        if self._interval == 0.0:
            return
        with self._next_slot.get_lock():
            now = self._monotonic()
            slot = max(now, self._next_slot.value)
            self._next_slot.value = slot + self._interval
        if slot > now:
            self._sleep(slot - now)

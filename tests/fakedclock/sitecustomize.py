"""Loaded by every Python process of the faked-clock pass (scripts/test-faked-clock
puts this folder on PYTHONPATH), and only there.

Debian 12's libfaketime (0.9.10) cannot fake the wall clock alone and leave the
monotonic clock real without breaking `time.sleep`: Python 3.11 sleeps with
clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME), which that version rewrites into
an invalid request (EINVAL). Faking the monotonic clock too is worse: every
`threading.Event.wait(timeout)` (sem_clockwait, which it does not intercept) then
waits for ever. So the monotonic clock stays real and `time.sleep` waits on an
event instead: the same duration, still interrupted by signals (a lock wait in
the main thread runs signal handlers, and an exception they raise ends it).
"""

from __future__ import annotations

import os
import threading
import time

if os.environ.get("FAKETIME") and os.environ.get("FAKETIME_DONT_FAKE_MONOTONIC") == "1":

    def _sleep(seconds: float) -> None:
        if seconds < 0:
            raise ValueError("sleep length must be non-negative")
        threading.Event().wait(seconds)

    time.sleep = _sleep

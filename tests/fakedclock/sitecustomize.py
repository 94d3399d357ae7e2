"""Loaded by every Python process of the faked-clock pass (scripts/test-faked-clock
puts this folder on PYTHONPATH), and only there: two workarounds for Debian 12's
libfaketime (0.9.10), read in its source (`apt-get source libfaketime`).

1. It cannot fake the wall clock alone and leave the monotonic clock real
   without breaking `time.sleep`: Python 3.11 sleeps with
   clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME), which it rewrites into an
   invalid request (EINVAL). Faking the monotonic clock too is worse: every
   `threading.Event.wait(timeout)` (sem_clockwait, which it does not intercept)
   then waits for ever. So the monotonic clock stays real, and `time.sleep`
   waits on an event instead: the same duration, still interrupted by signals
   (a lock wait in the main thread runs signal handlers, and an exception they
   raise ends it).
2. Its pthread_cond_timedwait() calls getenv() every time, and CPython waits for
   the GIL with pthread_cond_timedwait, in every thread, all the time; glibc's
   getenv() is not safe against a concurrent setenv(), which the tests' main
   thread calls (monkeypatch.setenv), and two passes died of a segmentation
   fault. So the C environment stays as the process started: `os.environ`
   (which Python code and pydantic-settings read) still changes, and a
   subprocess started without `env=` gets `os.environ` explicitly, as it would
   have inherited it.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from typing import Any

if os.environ.get("FAKETIME") and os.environ.get("FAKETIME_DONT_FAKE_MONOTONIC") == "1":

    def _sleep(seconds: float) -> None:
        if seconds < 0:
            raise ValueError("sleep length must be non-negative")
        threading.Event().wait(seconds)

    time.sleep = _sleep

    def _keep_c_environment(*_: Any) -> None:
        return None

    os.putenv = _keep_c_environment
    os.unsetenv = _keep_c_environment

    class _PopenWithEnvironment(subprocess.Popen):  # type: ignore[type-arg]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            if kwargs.get("env") is None and len(args) < 10:  # env is Popen's 10th parameter
                kwargs["env"] = dict(os.environ)
            super().__init__(*args, **kwargs)

    subprocess.Popen = _PopenWithEnvironment  # type: ignore[misc]

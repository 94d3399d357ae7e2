"""Graceful shutdown on SIGTERM/SIGINT.

The first signal asks the run to stop starting new work; in-flight work gets
`grace_seconds` to finish. A second signal, or the end of the grace period,
interrupts the in-flight work at once.
"""

from __future__ import annotations

import _thread
import logging
import signal
import threading
from collections.abc import Callable
from types import FrameType, TracebackType
from typing import Any

log = logging.getLogger(__name__)

HANDLED = (signal.SIGINT, signal.SIGTERM)


class Interrupted(BaseException):
    """Raised in the main thread when in-flight work must stop now.

    A BaseException, like KeyboardInterrupt, so broad `except Exception`
    blocks in the work do not swallow it.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class GracefulShutdown:
    def __init__(self, on_first_signal: Callable[[int], None], grace_seconds: float) -> None:
        self._on_first_signal = on_first_signal
        self._grace_seconds = grace_seconds
        self._previous: dict[int, Any] = {}
        self.received: int | None = None
        self._done = threading.Event()

    def __enter__(self) -> GracefulShutdown:
        if threading.current_thread() is threading.main_thread():
            for signum in HANDLED:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._done.set()
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.received is None:
            self.received = signum
            log.warning(
                "received %s: finishing in-flight work (up to %.0f s), then stopping",
                signal.Signals(signum).name,
                self._grace_seconds,
            )
            self._on_first_signal(signum)
            threading.Thread(target=self._grace_timer, name="grace-timer", daemon=True).start()
            return
        raise Interrupted(self.received)

    def _grace_timer(self) -> None:
        if not self._done.wait(self._grace_seconds):
            log.error("grace period over: interrupting in-flight work")
            # Delivers a signal to the main thread, whose handler then raises.
            _thread.interrupt_main(signal.Signals(self.received or signal.SIGTERM))

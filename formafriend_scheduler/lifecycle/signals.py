"""Graceful shutdown on SIGTERM/SIGINT.

The handlers cover the whole run, from taking the lease to releasing it. The
first signal asks the run to stop starting new work; in-flight work gets
`grace_seconds` to finish. A second signal, or the end of the grace period,
interrupts the in-flight work at once (only while job work runs: the run's
own bookkeeping, such as writing its outcome and releasing its lease, is
never cut short).
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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
        self._working = False
        self._done = threading.Event()
        self.received: int | None = None

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

    @contextmanager
    def work(self) -> Iterator[None]:
        """The span in which a second signal or the grace period interrupts."""
        self._working = True
        try:
            yield
        finally:
            self._working = False

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
        if self._working:
            raise Interrupted(self.received)

    def _grace_timer(self) -> None:
        if self._done.wait(self._grace_seconds) or not self._working:
            return
        log.error("grace period over: interrupting in-flight work")
        # A real signal to the main thread interrupts a blocking call (socket
        # read, sleep); its handler then raises Interrupted there.
        main = threading.main_thread().ident
        if main is not None:
            signal.pthread_kill(main, self.received or signal.SIGTERM)

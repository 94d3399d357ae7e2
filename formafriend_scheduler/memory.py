"""Memory of the whole process tree (the run and its pool workers), via psutil."""
# The name process_tree_memory is kept for its callers; the figure is PSS on Linux.

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import psutil

log = logging.getLogger(__name__)

# One sample of a run's six processes costs about 5 ms of CPU (psutil finds
# the children by reading all of /proc: 1 ms; each PSS is the kernel walking
# the process's pages: 0.2 to 1.3 ms). Every second, that was 0.6 s of a
# 90-second run, 0.07 ms per invitation; every 5 s a peak can be missed by
# 5 s of growth, and the memory limit acts 5 s later at most.
SAMPLE_SECONDS = 5.0


def process_memory(process: psutil.Process) -> int:
    """PSS where the kernel reports it (Linux), else RSS.

    PSS splits each shared page between the processes sharing it, so the sum
    over a process tree counts shared libraries once instead of once per
    worker, as a sum of RSS would.
    """
    try:
        return int(process.memory_full_info().pss)
    except (AttributeError, psutil.AccessDenied):
        return int(process.memory_info().rss)


def process_tree_memory(root: psutil.Process | None = None) -> int:
    """Memory of a process and all its descendants, in bytes (PSS, else RSS)."""
    root = root or psutil.Process()
    total = 0
    for process in [root, *root.children(recursive=True)]:
        try:
            total += process_memory(process)
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            continue  # a worker that exited between listing and reading
    return total


class MemorySampler:
    """Samples the process tree every `interval` seconds in a daemon thread,
    keeps the peak, and passes each sample to `on_sample`."""

    def __init__(
        self, interval: float = SAMPLE_SECONDS, on_sample: Callable[[int], None] | None = None
    ) -> None:
        self._interval = interval
        self._on_sample = on_sample
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="memory-sampler", daemon=True)
        self.peak_bytes = 0

    def sample(self) -> int:
        rss = process_tree_memory()
        self.peak_bytes = max(self.peak_bytes, rss)
        if self._on_sample is not None:
            self._on_sample(rss)
        return rss

    def start(self) -> None:
        self.sample()
        self._thread.start()

    def stop(self) -> int:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self.sample()
        return self.peak_bytes

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.sample()
            except Exception:  # sampling must never take the run down
                log.debug("memory sample failed", exc_info=True)

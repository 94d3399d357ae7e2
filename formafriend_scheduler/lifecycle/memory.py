"""Memory of the whole process tree (the run and its pool workers), via psutil."""
# The name process_tree_memory is kept for its callers; the figure is PSS on Linux.

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable

import psutil

log = logging.getLogger(__name__)

# One sample of a run's six processes cost 10 ms of CPU in a run on
# DocumentDB (120 ms in 60 s; 2026-12-07): finding the children the way
# psutil does (the stat of every process on the machine, 86 here) 1.2 ms,
# and each PSS is the kernel walking the process's pages, 12 µs per MB
# resident (0.2 ms at 13 MB, 1.7 ms at 157 MB). Every 5 s that was 2 ms of
# CPU per second of the run, the most of anything the run's own process did
# while its workers sent (a 5,000-user run on DocumentDB lasts 950 s: 1.9 s,
# 0.02 ms per invitation). Every 10 s, with the children read from the
# kernel's own lists (below), a peak can be missed by 10 s of growth and the
# memory limit acts 10 s late at most: a run's memory grows by batches, not
# by seconds.
SAMPLE_SECONDS = 10.0


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


# The kernel lists each thread's children in /proc (Linux 3.5+, with
# CONFIG_PROC_CHILDREN): a few small reads per process of the tree (0.1 ms
# for a run's six) instead of psutil's stat of every process on the machine.
_CHILD_LISTS = os.path.exists(f"/proc/{os.getpid()}/task/{os.getpid()}/children")


def _children_of(pid: int) -> list[int]:
    children: list[int] = []
    try:
        threads = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return children  # it ended meanwhile
    for thread in threads:
        try:
            with open(f"/proc/{pid}/task/{thread}/children", "rb") as listing:
                children += [int(child) for child in listing.read().split()]
        except OSError:
            continue  # a thread (or the process) that ended meanwhile
    return children


def descendants(root: psutil.Process) -> list[psutil.Process]:
    """Every process below `root`: its children, theirs, and so on."""
    if not _CHILD_LISTS:
        return root.children(recursive=True)
    found: list[psutil.Process] = []
    pending = [root.pid]
    while pending:
        for pid in _children_of(pending.pop()):
            try:
                found.append(psutil.Process(pid))
            except psutil.NoSuchProcess:
                continue  # ended between listing and reading
            pending.append(pid)
    return found


def process_tree_memory(root: psutil.Process | None = None) -> int:
    """Memory of a process and all its descendants, in bytes (PSS, else RSS)."""
    root = root or psutil.Process()
    total = 0
    for process in [root, *descendants(root)]:
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

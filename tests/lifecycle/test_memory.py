"""Memory of the process tree includes the children (pool workers)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator

import psutil
import pytest

from formafriend_scheduler.lifecycle import memory
from formafriend_scheduler.lifecycle.memory import MemorySampler, descendants, process_tree_memory

# A child that starts a grandchild, as the fork server starts the pool's workers.
_PARENT_OF_ONE = (
    "import subprocess, sys, time; "
    "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(30)']); time.sleep(30)"
)


@pytest.fixture
def child_with_grandchild() -> Iterator[tuple[int, int]]:
    child = subprocess.Popen([sys.executable, "-c", _PARENT_OF_ONE])
    try:
        deadline = time.monotonic() + 10
        while not psutil.Process(child.pid).children() and time.monotonic() < deadline:
            time.sleep(0.02)
        grandchild = psutil.Process(child.pid).children()[0].pid
        yield child.pid, grandchild
        psutil.Process(grandchild).kill()
    finally:
        child.kill()
        child.wait()


def test_descendants_are_the_children_and_theirs(child_with_grandchild: tuple[int, int]) -> None:
    found = {process.pid for process in descendants(psutil.Process())}
    assert set(child_with_grandchild) <= found
    assert found == {process.pid for process in psutil.Process().children(recursive=True)}


def test_without_the_kernels_child_lists_psutil_finds_them(
    child_with_grandchild: tuple[int, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(memory, "_CHILD_LISTS", False)
    assert set(child_with_grandchild) <= {p.pid for p in descendants(psutil.Process())}


def test_the_tree_includes_child_processes() -> None:
    alone = process_tree_memory()
    child = subprocess.Popen(
        [sys.executable, "-c", "import time; print('up', flush=True); time.sleep(30)"],
        stdout=subprocess.PIPE,
    )
    try:
        assert child.stdout is not None and child.stdout.readline() == b"up\n"  # running Python
        # the child's own RSS is far above any noise in ours
        with_child = process_tree_memory()
    finally:
        child.kill()
        child.wait()
    assert with_child > alone + 1_000_000


def test_the_sampler_keeps_the_peak_and_reports_each_sample() -> None:
    seen: list[int] = []
    sampler = MemorySampler(interval=60, on_sample=seen.append)
    sampler.start()
    peak = sampler.stop()
    assert len(seen) == 2  # one at start, one at stop
    assert peak == max(seen) > 0

"""Memory of the process tree includes the children (pool workers)."""

from __future__ import annotations

import subprocess
import sys

from formafriend_scheduler.memory import MemorySampler, process_tree_memory


def test_the_tree_includes_child_processes() -> None:
    alone = process_tree_memory()
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
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

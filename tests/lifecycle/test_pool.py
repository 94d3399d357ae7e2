"""The worker pool: results, a hung batch, a crashed worker, stopping."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from formafriend_scheduler.lifecycle.pool import (
    InlinePool,
    PoolBroken,
    ProcessPool,
    Progress,
    Task,
    TaskResult,
)

REPO = Path(__file__).parents[2]


@dataclass(frozen=True)
class Toy:
    """A handler whose behaviour each task's items choose (picklable for spawn)."""

    def __call__(self, task: Task, progress: Progress) -> TaskResult:
        action = task.items[0]
        if action == "hang" or (action == "hang-once" and task.attempt == 1):
            time.sleep(600)
        if action == "long but advancing":
            for _ in range(30):  # 3 s in all, each step well within the timeout
                time.sleep(0.1)
                progress()
        if action == "crash":
            os._exit(3)
        if action == "count frozen objects":
            return TaskResult(task.task_id, task.kind, {"frozen": gc.get_freeze_count()})
        if action == "raise":
            raise ValueError("bad batch")
        return TaskResult(task.task_id, task.kind, {"done": 1, "pid": os.getpid()})

    def close(self) -> None:
        return None


@dataclass(frozen=True)
class ToyFactory:
    def __call__(self) -> Toy:
        return Toy()


@dataclass(frozen=True)
class BrokenFactory:
    def __call__(self) -> Toy:
        raise RuntimeError("cannot start")


def tasks(*actions: str) -> list[Task]:
    return [Task(i, "toy", (action,)) for i, action in enumerate(actions, 1)]


def run(pool: InlinePool | ProcessPool, work: list[Task]) -> dict[int, TaskResult]:
    results: dict[int, TaskResult] = {}
    with pool:
        pool.run(work, lambda: False, lambda result: results.__setitem__(result.task_id, result))
    return results


def test_every_task_gets_one_result_from_several_processes() -> None:
    results = run(ProcessPool(ToyFactory(), 2, task_timeout=30), tasks(*["ok"] * 6))
    assert sorted(results) == [1, 2, 3, 4, 5, 6]
    assert all(r.failure is None for r in results.values())
    assert len({r.stats["pid"] for r in results.values()}) == 2
    assert os.getpid() not in {r.stats["pid"] for r in results.values()}


def test_a_worker_starts_with_the_fork_servers_imports_out_of_the_collectors_reach() -> None:
    # Its collections then never write to (and copy) the pages it shares.
    results = run(ProcessPool(ToyFactory(), 1, task_timeout=30), tasks("count frozen objects"))
    assert results[1].stats["frozen"] > 10_000


def test_a_run_with_no_task_starts_no_worker() -> None:
    # An hourly run with nobody due: no fork server, no worker.
    before = set(psutil.Process().children(recursive=True))
    assert run(ProcessPool(ToyFactory(), 2, task_timeout=30), []) == {}
    assert set(psutil.Process().children(recursive=True)) == before


def test_a_task_that_raises_fails_alone() -> None:
    results = run(ProcessPool(ToyFactory(), 1, task_timeout=30), tasks("ok", "raise", "ok"))
    assert results[2].failure == "ValueError: bad batch"
    assert results[1].failure is results[3].failure is None


def test_a_hung_batch_is_killed_retried_once_then_reported_failed() -> None:
    pool = ProcessPool(ToyFactory(), 2, task_timeout=0.5)
    results = run(pool, tasks("hang", "hang-once", "ok"))
    assert results[1].failure == "timed out twice"
    assert results[2].failure is None  # the retry succeeded
    assert results[3].failure is None
    assert pool.events.timeouts == 3


def test_a_batch_longer_than_the_timeout_that_keeps_advancing_is_not_killed() -> None:
    # Given a timeout of 2 s (workers report progress at most once a second),
    pool = ProcessPool(ToyFactory(), 1, task_timeout=2)
    # when a batch takes 3 s but shows progress all along, and a hung one none,
    results = run(pool, tasks("long but advancing", "hang"))
    # then only the hung one is timed out (twice: its retry hangs too).
    assert results[1].failure is None and results[1].stats["done"] == 1
    assert results[2].failure == "timed out twice"
    assert pool.events.timeouts == 2


def test_a_crashed_worker_is_replaced_and_its_batch_retried() -> None:
    pool = ProcessPool(ToyFactory(), 1, task_timeout=30)
    results = run(pool, tasks("crash", "ok"))
    assert results[1].failure == "crashed twice"
    assert results[2].failure is None
    assert pool.events.crashes == 2


def test_workers_that_keep_dying_before_any_work_break_the_pool() -> None:
    with pytest.raises(PoolBroken, match="keep crashing"):
        run(ProcessPool(BrokenFactory(), 1, task_timeout=30), tasks(*["ok"] * 6))


def test_stopping_lets_in_flight_work_finish_and_starts_nothing_new() -> None:
    results: dict[int, TaskResult] = {}
    pulled: list[int] = []

    def lazy() -> list[Task]:
        return tasks(*["ok"] * 5)

    def source():  # type: ignore[no-untyped-def]
        for task in lazy():
            pulled.append(task.task_id)
            yield task

    with InlinePool(ToyFactory()) as pool:
        pool.run(source(), lambda: len(results) >= 2, lambda r: results.__setitem__(r.task_id, r))
    assert sorted(results) == [1, 2]
    assert pulled == [1, 2, 3]  # the third was pulled, then the stop was seen


ORPHAN_SCRIPT = """
import sys, time
sys.path.insert(0, {repo!r})
from tests.lifecycle.test_pool import ToyFactory, tasks
from formafriend_scheduler.lifecycle.pool import ProcessPool
pool = ProcessPool(ToyFactory(), 2, task_timeout=600)
calls = []
def report():  # asked before each dispatch round: the second time, both workers hang
    calls.append(1)
    if len(calls) == 2:
        print(" ".join(str(w.process.pid) for w in pool._workers), flush=True)
    return False
pool.run(tasks("hang", "hang"), report, lambda result: None)
"""


def test_workers_die_with_a_killed_parent() -> None:
    # Given a run whose two workers are busy, when the run is SIGKILLed,
    parent = subprocess.Popen(
        [sys.executable, "-c", ORPHAN_SCRIPT.format(repo=str(REPO))],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert parent.stdout is not None
    worker_pids = [int(pid) for pid in parent.stdout.readline().split()]
    assert len(worker_pids) == 2
    parent.kill()
    parent.wait()
    # then the kernel takes its workers down too: none sends on unsupervised.
    deadline = time.monotonic() + 10
    while any(psutil.pid_exists(pid) for pid in worker_pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    alive = [pid for pid in worker_pids if psutil.pid_exists(pid)]
    assert alive == [] or all(psutil.Process(pid).status() == psutil.STATUS_ZOMBIE for pid in alive)

"""The run lifecycle shared by every job: lease, record, outcome, signals."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from formafriend_scheduler.clock import FrozenClock, SystemClock, to_utc
from formafriend_scheduler.config import Settings
from formafriend_scheduler.errors import ClockSkew, DatabaseUnavailable, ExitCode, JobLocked
from formafriend_scheduler.hooks.events import EventBus
from formafriend_scheduler.lifecycle.context import JobContext, JobOutcome
from formafriend_scheduler.lifecycle.lock import Owner, acquire
from formafriend_scheduler.lifecycle.runner import Runner
from formafriend_scheduler.logs import configure_logging
from formafriend_scheduler.redact import Redactor
from formafriend_scheduler.store import Store, connect
from tests.conftest import make_settings
from tests.jobdoubles import SteppedJob
from tests.sinks import CollectingSink


def runner(settings: Settings, store: Store, clock: Any, **kwargs: Any) -> Runner:
    return Runner(settings, store, clock, EventBus(clock), **kwargs)


def event_names(record: dict[str, Any]) -> list[str]:
    return [event["event"] for event in record["events"]]


def test_a_successful_run_is_recorded_and_releases_its_lease(
    settings: Settings, store: Store, clock: FrozenClock
) -> None:
    result = runner(settings, store, clock).run(SteppedJob(steps=3), {"dry_run": False})

    assert (result.status, result.exit_code) == ("success", ExitCode.OK)
    record = store.jobs.get(result.run_id)
    assert record is not None
    assert record["status"] == "success"
    assert record["stats"] == {"steps": 3}
    assert record["progress"]["done"] == 3
    assert record["options"] == {"dry_run": False}
    assert record["peakMemoryBytes"] > 0
    assert record["host"] and record["pid"] == os.getpid()
    assert event_names(record) == ["job-started", "job-completed", "test-job-job-completed"]
    assert store.locks.holder_of("test-job") is None


def test_progress_is_visible_in_the_record_while_running(
    settings: Settings, store: Store, clock: FrozenClock
) -> None:
    seen: list[dict[str, Any]] = []

    def look(ctx: JobContext, step: int) -> None:
        if step == 1:
            record = store.jobs.get(ctx.run_id)
            assert record is not None
            seen.append(record)

    runner(settings, store, clock).run(SteppedJob(steps=3, action=look))
    assert seen[0]["status"] == "running"
    assert seen[0]["progress"]["done"] == 1
    assert seen[0]["progress"]["total"] == 3


def test_a_partial_outcome_exits_3(settings: Settings, store: Store, clock: FrozenClock) -> None:
    job = SteppedJob(outcome=JobOutcome("partial", "2 items failed"))
    result = runner(settings, store, clock).run(job)
    assert (result.status, result.exit_code, result.message) == ("partial", 3, "2 items failed")


def test_a_crashing_job_is_recorded_failed_without_secrets(
    mongodb_uri: str, clock: FrozenClock
) -> None:
    settings = make_settings(mongodb_uri, smtp_url="smtp://mailer:topsecret99@smtp.example.org")
    store_ = connect(settings)

    def explode(ctx: JobContext, step: int) -> None:
        raise RuntimeError("SMTP login failed with password topsecret99")

    result = runner(settings, store_, clock).run(SteppedJob(action=explode))

    assert (result.status, result.exit_code) == ("failed", ExitCode.FAILED)
    record = store_.jobs.get(result.run_id)
    assert record is not None
    assert record["error"] == {
        "class": "RuntimeError",
        "message": "SMTP login failed with password ***",
    }
    assert "topsecret99" not in repr(record)
    assert event_names(record) == ["job-started", "job-failed"]
    assert store_.locks.holder_of("test-job") is None


def test_a_database_outage_inside_the_job_exits_75(
    settings: Settings, store: Store, clock: FrozenClock
) -> None:
    def outage(ctx: JobContext, step: int) -> None:
        raise DatabaseUnavailable("MongoDB unreachable after 5 attempt(s)")

    result = runner(settings, store, clock).run(SteppedJob(action=outage))
    assert (result.status, result.exit_code) == ("failed", ExitCode.TEMPFAIL)


def test_a_second_run_while_the_first_holds_the_lease_is_refused(
    settings: Settings, store: Store, clock: FrozenClock
) -> None:
    refused: list[str] = []

    def start_another(ctx: JobContext, step: int) -> None:
        if step == 0:
            with pytest.raises(JobLocked) as raised:
                runner(settings, store, clock).run(SteppedJob())
            refused.append(str(raised.value))

    runner(settings, store, clock).run(SteppedJob(action=start_another))
    assert "test-job is locked by run test-job-" in refused[0]


def test_a_run_that_cannot_start_tells_the_monitors_but_a_locked_one_does_not(
    settings: Settings, clock: FrozenClock
) -> None:
    sink = CollectingSink()
    down = make_settings("mongodb://127.0.0.1:9/x", mongodb_timeout_seconds=0.2)
    unreachable = connect(down, retry_attempts=1)
    with pytest.raises(DatabaseUnavailable):
        Runner(down, unreachable, clock, EventBus(clock, [sink])).run(SteppedJob())
    (failed,) = sink.events
    assert failed.name == "job-failed"
    assert failed.payload["exitCode"] == 75 and failed.payload["jobType"] == "test-job"
    assert failed.payload["jobId"].startswith("test-job-")  # the ping's ?rid=

    store = connect(settings)
    acquire(store.locks, "test-job", Owner("other-run", "h", 1), clock, timedelta(minutes=5))
    sink.events.clear()
    with pytest.raises(JobLocked):
        Runner(settings, store, clock, EventBus(clock, [sink])).run(SteppedJob())
    assert sink.events == []  # the live run reports for itself


def test_the_lease_is_kept_while_slow_sinks_hear_the_outcome(
    mongodb_uri: str, clock: FrozenClock
) -> None:
    """A webhook retrying for longer than the lease must not let another run in."""
    settings = make_settings(mongodb_uri, lock_ttl_seconds=3)  # a beat every second
    store = connect(settings)
    intruder: list[bool] = []

    def renewed_at_now() -> bool:
        """Waits (real time, at most 10 s) for a heartbeat at the frozen `now`."""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            doc = store.db["scheduler_locks"].find_one({"_id": "test-job"})
            if doc and doc.get("renewedAt") and to_utc(doc["renewedAt"]) >= clock.now():
                return True
            time.sleep(0.05)
        return False

    class SlowSink:
        def handle(self, event: Any) -> None:
            if event.name == "job-completed":  # the sink takes 4 s of a 3 s lease
                for _ in range(2):
                    clock.advance(timedelta(seconds=2))
                    assert renewed_at_now(), "no heartbeat while the sinks ran"
                grant = store.locks.try_acquire(
                    "test-job", "intruder", "h", 1, clock.now(), timedelta(seconds=3)
                )
                intruder.append(grant.granted)

    events = EventBus(clock, [SlowSink()])
    result = Runner(settings, store, clock, events, check_clock_skew=False).run(SteppedJob())
    assert intruder == [False]
    assert (result.status, result.exit_code) == ("success", ExitCode.OK)
    assert store.jobs.get(result.run_id)["status"] == "success"  # type: ignore[index]


def test_a_lease_taken_over_mid_run_stops_the_run(
    settings: Settings, store: Store, clock: FrozenClock
) -> None:
    def successor_takes_over(ctx: JobContext, step: int) -> None:
        if step == 1:
            # Given this run was paused past its lease and a successor took over,
            clock.advance(timedelta(seconds=settings.lock_ttl_seconds + 1))
            acquire(
                store.locks, "test-job", Owner("successor", "other-host", 1), clock, ctx.lease.ttl
            )
            store.jobs.mark_abandoned(ctx.run_id, clock.now(), "taken over")
            # when its heartbeat next fires,
            ctx.lease.renew()

    job = SteppedJob(steps=5, action=successor_takes_over)
    result = runner(settings, store, clock, check_clock_skew=False).run(job)

    # then it starts no new work and records why it stopped.
    assert job.done == 2
    assert (result.status, result.exit_code) == ("interrupted", ExitCode.TEMPFAIL)
    record = store.jobs.get(result.run_id)
    assert record is not None
    assert record["status"] == "interrupted"
    assert "taken over by another run" in record["message"]
    holder = store.locks.holder_of("test-job")
    assert holder is not None and holder.run_id == "successor"


@pytest.mark.parametrize(
    ("signum", "exit_code"), [(signal.SIGTERM, ExitCode.SIGTERM), (signal.SIGINT, ExitCode.SIGINT)]
)
def test_a_signal_stops_new_work_and_records_interrupted(
    settings: Settings, store: Store, clock: FrozenClock, signum: int, exit_code: int
) -> None:
    def signal_self(ctx: JobContext, step: int) -> None:
        if step == 0:
            os.kill(os.getpid(), signum)

    handler_before = signal.getsignal(signum)
    job = SteppedJob(steps=5, action=signal_self)
    result = runner(settings, store, clock).run(job)

    assert job.done == 1  # the in-flight step finished; no new one started
    assert (result.status, result.exit_code) == ("interrupted", exit_code)
    record = store.jobs.get(result.run_id)
    assert record is not None and record["status"] == "interrupted"
    assert store.locks.holder_of("test-job") is None
    assert signal.getsignal(signum) == handler_before  # the run's handlers are gone


def test_a_second_signal_interrupts_in_flight_work(
    settings: Settings, store: Store, clock: FrozenClock
) -> None:
    def stubborn(ctx: JobContext, step: int) -> None:
        os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGTERM)  # raises Interrupted here
        raise AssertionError("not reached")

    result = runner(settings, store, clock).run(SteppedJob(action=stubborn))
    assert (result.status, result.exit_code) == ("interrupted", ExitCode.SIGTERM)


def test_work_still_in_flight_after_the_grace_period_is_interrupted(
    mongodb_uri: str, clock: FrozenClock
) -> None:
    settings = make_settings(mongodb_uri, shutdown_grace_seconds=0.2)
    store_ = connect(settings)

    def slow(ctx: JobContext, step: int) -> None:
        os.kill(os.getpid(), signal.SIGTERM)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # in-flight work that ignores the stop request
            time.sleep(0.01)
        raise AssertionError("the grace period did not end the work")

    result = runner(settings, store_, clock).run(SteppedJob(action=slow))
    assert (result.status, result.exit_code) == ("interrupted", ExitCode.SIGTERM)


def test_the_memory_limit_stops_new_work_and_ends_partial(
    mongodb_uri: str, clock: FrozenClock
) -> None:
    settings = make_settings(mongodb_uri, max_memory_mb=1)
    store_ = connect(settings)
    job = SteppedJob(steps=3)
    result = runner(settings, store_, clock).run(job)

    assert job.done == 0
    assert (result.status, result.exit_code) == ("partial", ExitCode.PARTIAL)
    assert "SCHEDULER_MAX_MEMORY_MB" in result.message
    names = [event["event"] for event in result.events]
    assert "high-memory-usage" in names


def test_the_duration_limit_stops_new_work_and_ends_partial(
    settings: Settings, store: Store, clock: FrozenClock
) -> None:
    def long_step(ctx: JobContext, step: int) -> None:
        clock.advance(timedelta(hours=settings.max_job_duration_hours))
        ctx.lease.renew()  # as the heartbeat does all along a long run

    job = SteppedJob(steps=3, action=long_step)
    result = runner(settings, store, clock, check_clock_skew=False).run(job)
    assert job.done == 1
    assert (result.status, result.exit_code) == ("partial", ExitCode.PARTIAL)
    assert "SCHEDULER_MAX_JOB_DURATION_HOURS" in result.message


@pytest.mark.real_server_only
def test_a_run_refuses_to_start_when_the_clocks_disagree(mongodb_uri: str) -> None:
    settings = make_settings(mongodb_uri, max_clock_skew_seconds=30)
    store = connect(settings)
    server_now = store.server_time()  # not this process's clock: it may be faked
    assert server_now is not None
    within, beyond = (FrozenClock(server_now + timedelta(seconds=s)) for s in (20, 90))

    with pytest.raises(ClockSkew, match=r"(89|90)\.\d s ahead of the MongoDB server"):
        runner(settings, store, beyond).run(SteppedJob())
    assert store.locks.holder_of("test-job") is None
    assert runner(settings, store, within).run(SteppedJob()).status == "success"


HOLDER_SCRIPT = """
import sys, time
from formafriend_scheduler.clock import SystemClock
from formafriend_scheduler.config import load_settings
from formafriend_scheduler.lifecycle.context import JobOutcome
from formafriend_scheduler.hooks.events import EventBus
from formafriend_scheduler.lifecycle.runner import Runner
from formafriend_scheduler.store import connect

class Forever:
    job_type = "test-job"
    def run(self, ctx):
        print(ctx.run_id, flush=True)
        while True:
            time.sleep(1)

settings = load_settings(mongodb_uri=sys.argv[1], lock_ttl_seconds=5)
Runner(settings, connect(settings), SystemClock(), EventBus(SystemClock())).run(Forever())
"""


@pytest.mark.real_server_only
def test_after_a_holder_is_killed_the_next_run_takes_over_and_marks_it_abandoned(
    mongodb_uri: str, tmp_path: Path
) -> None:
    settings = make_settings(mongodb_uri, lock_ttl_seconds=5)
    store_ = connect(settings)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER_SCRIPT, mongodb_uri],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).parents[2],
    )
    assert holder.stdout is not None
    dead_run_id = holder.stdout.readline().strip()
    holder.kill()  # SIGKILL: no handler runs, the lease stays behind
    holder.wait()

    clock = FrozenClock(SystemClock().now())
    with pytest.raises(JobLocked):
        runner(settings, store_, clock).run(SteppedJob())

    clock.advance(timedelta(seconds=6))  # past the dead run's 5 s lease
    result = runner(settings, store_, clock).run(SteppedJob())

    assert result.status == "success"
    dead = store_.jobs.get(dead_run_id)
    assert dead is not None
    assert dead["status"] == "abandoned"
    assert "expired" in dead["error"]["message"] and result.run_id in dead["error"]["message"]


def test_a_lease_lost_after_the_last_step_still_ends_interrupted(
    settings: Settings, store: Store, clock: FrozenClock
) -> None:
    def successor_takes_over_during_the_last_step(ctx: JobContext, step: int) -> None:
        if step == 2:
            clock.advance(timedelta(seconds=settings.lock_ttl_seconds + 1))
            acquire(store.locks, "test-job", Owner("successor", "h", 1), clock, ctx.lease.ttl)
            store.jobs.mark_abandoned(ctx.run_id, clock.now(), "taken over")

    job = SteppedJob(steps=3, action=successor_takes_over_during_the_last_step)
    result = runner(settings, store, clock, check_clock_skew=False).run(job)

    assert job.done == 3
    assert (result.status, result.exit_code) == ("interrupted", ExitCode.TEMPFAIL)
    holder = store.locks.holder_of("test-job")
    assert holder is not None and holder.run_id == "successor"  # untouched by the release


def test_a_signal_outranks_a_limit_for_the_exit_code(
    settings: Settings, store: Store, clock: FrozenClock
) -> None:
    def limit_then_sigterm(ctx: JobContext, step: int) -> None:
        clock.advance(timedelta(hours=settings.max_job_duration_hours))
        ctx.lease.renew()
        ctx.should_stop()  # the duration limit is noted first
        os.kill(os.getpid(), signal.SIGTERM)

    result = runner(settings, store, clock, check_clock_skew=False).run(
        SteppedJob(action=limit_then_sigterm)
    )
    assert (result.status, result.exit_code) == ("interrupted", ExitCode.SIGTERM)


@pytest.mark.timeout(30)
def test_the_grace_period_interrupts_a_blocking_call(mongodb_uri: str, clock: FrozenClock) -> None:
    settings = make_settings(mongodb_uri, shutdown_grace_seconds=0.2)

    def blocked(ctx: JobContext, step: int) -> None:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(600)  # one blocking call, as a hung socket read would be

    result = runner(settings, connect(settings), clock).run(SteppedJob(action=blocked))
    assert (result.status, result.exit_code) == ("interrupted", ExitCode.SIGTERM)


def test_a_signal_while_the_outcome_is_written_still_releases_the_lease(
    settings: Settings, store: Store, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_finish = type(store.jobs).finish

    def finish_then_signal(self: Any, *args: Any) -> bool:
        os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGTERM)  # even a second one
        return real_finish(self, *args)

    monkeypatch.setattr(type(store.jobs), "finish", finish_then_signal)
    result = runner(settings, store, clock).run(SteppedJob())

    assert result.status == "success"  # the work was done before the signal
    record = store.jobs.get(result.run_id)
    assert record is not None and record["status"] == "success"
    assert store.locks.holder_of("test-job") is None


def test_tracebacks_in_debug_logs_are_redacted(
    mongodb_uri: str, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings(mongodb_uri, smtp_url="smtp://mailer:Tr4ceSecret@smtp.example.org")
    stream = io.StringIO()
    monkeypatch.setattr("sys.stderr", stream)
    configure_logging(
        level="DEBUG", log_format="json", verbose=True, redactor=Redactor(settings.secret_values())
    )

    def explode(ctx: JobContext, step: int) -> None:
        ctx.note_error("contact x: login with Tr4ceSecret refused")
        raise RuntimeError("auth failed for smtp://mailer:Tr4ceSecret@smtp.example.org")

    result = runner(settings, connect(settings), clock).run(SteppedJob(action=explode))

    logged = stream.getvalue()
    assert '"traceback"' in logged  # the debug line with the traceback was written
    assert "Tr4ceSecret" not in logged
    record = connect(settings).jobs.get(result.run_id)
    assert record is not None and "Tr4ceSecret" not in repr(record)

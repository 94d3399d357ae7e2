"""What the fault-injection tests share: a mailing on a real server, the
scheduler run as an operator runs it (its own process group, real workers),
faults triggered by progress (after N messages, not after N seconds), and the
checks every fault must pass."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from bson import ObjectId

from formafriend_scheduler.clock import SystemClock
from formafriend_scheduler.eligibility import Month
from formafriend_scheduler.jobs.delivery import CHUNK_SIZE
from formafriend_scheduler.store import Store
from tests.jobs.monthly_helpers import DUE_WHENEVER
from tests.smtpserver import SmtpServer

REPO = Path(__file__).parents[2]
WORKERS = 2
BATCH = 40  # invitations per send batch: two chunks of 20
LEASE_SECONDS = 3  # the shortest lease the settings allow, so takeovers come quickly
BATCH_TIMEOUT_MS = (
    30_000  # SCHEDULER_WORKER_TIMEOUT: well above a batch's SMTP and database retries
)
# A run that takes over after a crash runs with a short SCHEDULER_WORKER_TIMEOUT,
# which is also how old a claim must be before it may take it over.
TAKEOVER_MS = 4000
PARIS = ZoneInfo("Europe/Paris")  # the default SCHEDULER_TIMEZONE, which decides the month
# The most one crash (kill -9, a lost lease) can send twice: each worker's chunk in flight.
DUPLICATES_PER_CRASH = WORKERS * CHUNK_SIZE


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.02)


@dataclass
class Run:
    """One `formafriend-scheduler` command, in a process group of its own."""

    process: subprocess.Popen[str]
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def signal_group(self, signum: int) -> None:
        os.killpg(self.process.pid, signum)

    def wait(self, timeout: float = 120) -> int:
        return self.process.wait(timeout=timeout)

    @property
    def stderr(self) -> str:
        return self.log.read_text()


@dataclass
class Mailing:
    """A sender with `contacts` contacts, all due this month, on a real server."""

    uri: str
    store: Store
    smtp: SmtpServer
    logs: Path
    contacts: int = 120
    env: dict[str, str] = field(default_factory=dict)
    emails: list[str] = field(default_factory=list)
    month: str = ""
    runs: int = 0
    started: list[Run] = field(default_factory=list)

    def __post_init__(self) -> None:
        owner = ObjectId()
        self.store.db["users"].insert_one({"_id": owner, "username": "alice", "email": "a@x.org"})
        self.emails = [f"c{i:03d}@x.org" for i in range(self.contacts)]
        self.store.db["contacts"].insert_many([{"ownerId": owner, "email": e} for e in self.emails])
        self.month = str(Month.containing(SystemClock().now(), PARIS))
        self.env = {
            **os.environ,
            "MONGODB_URI": self.uri,
            "SMTP_URL": self.smtp.url,
            **DUE_WHENEVER,
            "SCHEDULER_LOCK_TTL_SECONDS": str(LEASE_SECONDS),
            "SCHEDULER_WORKER_TIMEOUT": str(BATCH_TIMEOUT_MS),
            "SCHEDULER_INVITATION_BATCH_SIZE": str(BATCH),
            "SCHEDULER_MONGODB_TIMEOUT_SECONDS": "2",
            "SCHEDULER_MONGODB_RETRY_ATTEMPTS": "3",
            "SCHEDULER_SHUTDOWN_GRACE_SECONDS": "2",
        }

    def start(self, *arguments: str, **env: str) -> Run:
        self.runs += 1
        log = self.logs / f"run-{self.runs}.stderr"
        command = [sys.executable, "-m", "formafriend_scheduler", "--log-level", "info"]
        command += ["monthly-invitations", "--month", self.month, "--workers", str(WORKERS)]
        with log.open("w") as stderr:
            process = subprocess.Popen(
                [*command, *arguments],
                env={**self.env, **env},
                cwd=REPO,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                text=True,
                start_new_session=True,  # a process group of its own: kill -9 takes all of it
            )
        run = Run(process, log)
        self.started.append(run)
        return run

    def start_after_crash(self) -> Run:
        """A run that takes over a killed one: once its lease and claims are stale."""
        time.sleep(max(LEASE_SECONDS, TAKEOVER_MS / 1000) + 0.5)
        return self.start(SCHEDULER_WORKER_TIMEOUT=str(TAKEOVER_MS))

    def stop_every_run(self) -> None:
        """Teardown: a failed test leaves no run behind (stopped ones included)."""
        for run in self.started:
            if run.process.poll() is None:
                os.killpg(run.pid, signal.SIGKILL)
                run.process.wait(timeout=10)

    def run(self, *arguments: str, **env: str) -> int:
        return self.start(*arguments, **env).wait()

    def run_until_done(self, **env: str) -> int:
        """Runs until one is not refused by a lease that has yet to expire."""
        for _ in range(20):
            code = self.run(**env)
            if code != 75:
                return code
            time.sleep(1)
        raise AssertionError("every run found the job locked")

    def take_over(self) -> int:
        """After a crash: wait out the dead run's lease and claims, then run
        until the month is done; the exit code of that last run."""
        time.sleep(max(LEASE_SECONDS, TAKEOVER_MS / 1000) + 0.5)
        return self.run_until_done(SCHEDULER_WORKER_TIMEOUT=str(TAKEOVER_MS))

    def wait_for_messages(self, count: int, timeout: float = 60) -> None:
        wait_until(lambda: len(self.smtp.received) >= count, timeout, f"{count} messages")

    # -- the checks ---------------------------------------------------------

    def duplicates(self) -> int:
        return sum(n - 1 for n in self.smtp.recipients().values())

    def assert_exactly_once(self, *, crashes: int = 0, unsent: set[str] | None = None) -> None:
        """One invitation per recipient and month; every one sent (but
        `unsent`); each message received once, plus at most
        DUPLICATES_PER_CRASH per crash."""
        unsent = unsent or set()
        invitations = list(self.store.db["invitations"].find({"month": self.month}))
        per_recipient = sorted(doc["toEmail"] for doc in invitations)
        assert per_recipient == self.emails, "one invitation per recipient and month"
        not_sent = {doc["toEmail"] for doc in invitations if doc["status"] != "sent"}
        assert not_sent == unsent
        assert set(self.smtp.recipients()) >= set(self.emails) - unsent
        assert self.duplicates() <= crashes * DUPLICATES_PER_CRASH, self.smtp.recipients()

    def records(self) -> list[dict[str, Any]]:
        return list(self.store.db["scheduler_jobs"].find().sort("startedAt", 1))

    def lock_holder(self) -> Any:
        return self.store.locks.holder_of("monthly-invitations")

"""What the benchmarks share: the servers, the sink, the probe that counts a
run's costs, the fair floor's parts, and the report."""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import shutil
import smtplib
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psutil
import pymongo
from pymongo.errors import BulkWriteError, PyMongoError

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from formafriend_scheduler.config import load_settings  # noqa: E402
from formafriend_scheduler.eligibility import Month  # noqa: E402
from formafriend_scheduler.jobs.delivery import CHUNK_SIZE, CLAIM_EVERY  # noqa: E402
from formafriend_scheduler.lifecycle.memory import process_tree_memory  # noqa: E402
from formafriend_scheduler.mail.compose import Kind, Letter  # noqa: E402
from formafriend_scheduler.mail.setup import composer_for  # noqa: E402
from formafriend_scheduler.store.outbox import Settle, claim_document, outbox_key  # noqa: E402
from formafriend_scheduler.store.retry import is_transient  # noqa: E402
from tests.appdata import create_indexes, indexes_of  # noqa: E402 (re-exported)
from tests.pgstats import CountersReset, ScanCounters  # noqa: E402 (re-exported)
from tests.realserver import ferretdb_server  # noqa: E402
from tests.smtpserver import free_port  # noqa: E402

MB = 1024 * 1024
SERVERS = ("ferretdb", "java", "documentdb")
PROBE = REPO / "benchmarks" / "probe"
CHUNK = CHUNK_SIZE  # the scheduler's chunk: the floor writes in the same bulks


# -- servers -------------------------------------------------------------------


def documentdb_kit() -> Path:
    kit = Path(os.environ.get("FAF_DOCUMENTDB_KIT", REPO.parent / "shared/servers/documentdb"))
    if not (kit / "start.sh").exists():
        sys.exit(
            f"--server documentdb needs the DocumentDB kit (build.sh, start.sh); none in {kit}: "
            "set FAF_DOCUMENTDB_KIT to its folder"
        )
    return kit


@contextmanager
def documentdb_server() -> Iterator[str]:
    """FerretDB v2 + PostgreSQL + DocumentDB from the kit, built and started
    here (as root) and left running for the next benchmark."""
    kit = documentdb_kit()
    build = subprocess.run([str(kit / "build.sh")], capture_output=True, text=True, check=False)
    if build.returncode != 0:
        sys.exit(f"{kit}/build.sh failed:\n{build.stdout[-2000:]}{build.stderr[-2000:]}")
    started = subprocess.run([str(kit / "start.sh")], capture_output=True, text=True, check=True)
    yield started.stdout.strip()


@contextmanager
def mongo_java_server() -> Iterator[str]:
    """mongo-java-server (in-memory) from benchmarks/mongo-java-server; its URI."""
    process = subprocess.Popen(
        [str(REPO / "benchmarks" / "mongo-java-server" / "run")],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        uri = process.stdout.readline().strip()
        if not uri.startswith("mongodb://"):
            sys.exit("mongo-java-server did not start (needs Java 17+ and Maven)")
        yield uri
    finally:
        process.terminate()
        process.wait(timeout=30)


def add_server_options(parser: argparse.ArgumentParser) -> None:
    """--server and --mongodb-uri, read by benchmark_server()."""
    parser.add_argument(
        "--server",
        choices=SERVERS,
        default="ferretdb",
        help="the server to start: the embedded FerretDB v1, mongo-java-server (in-memory), "
        "or FerretDB v2 + DocumentDB from ../shared/servers/documentdb",
    )
    parser.add_argument("--mongodb-uri", help="a running server to use instead")


SERVER_NAMES = {
    "ferretdb": "FerretDB v1.24.2 (SQLite), embedded",
    "java": "mongo-java-server 1.47.0 (in-memory)",
    "documentdb": "FerretDB v2.7.0 + PostgreSQL 15 + DocumentDB 0.106",
}


@contextmanager
def benchmark_server(kind: str, given_uri: str | None) -> Iterator[tuple[str, str]]:
    """(server URI, what it is)."""
    if given_uri:
        yield given_uri, f"given URI ({given_uri.split('@')[-1]})"
        return
    starter = {"java": mongo_java_server, "documentdb": documentdb_server}.get(kind)
    with (starter or ferretdb_server)() as uri:
        yield uri, SERVER_NAMES[kind]


def database_uri(server: str, database: str) -> str:
    return server.rstrip("/").split("?")[0] + "/" + database


# -- what every benchmark's run needs ------------------------------------------------


def scheduler_env(uri: str, sink_port: int, **extra: str) -> dict[str, str]:
    """The environment of a benchmarked run: its database, the sink, SMTP only."""
    env = {**os.environ, "MONGODB_URI": uri,
           "SMTP_URL": f"smtp://127.0.0.1:{sink_port}?security=none", **extra}  # fmt: skip
    env.pop("EMAIL_TRANSPORT", None)
    return env


def started_scan_counters(args: argparse.Namespace, database: str) -> ScanCounters | None:
    """PostgreSQL's scan counters, started, when the benchmark started DocumentDB."""
    if args.server != "documentdb" or args.mongodb_uri:
        return None
    counters = ScanCounters(database)
    counters.start()
    return counters


def prebuilt_message(kind: Kind, **fields: Any) -> bytes:
    """One message of `kind` as the scheduler composes it, for the floor to send."""
    now = datetime.now(UTC)
    letter = Letter(kind=kind, key="0" * 24, tone="friendly", month=Month(2000, 1),
                    token="0" * 64, expires_at=now, timezone=ZoneInfo("Europe/Paris"),
                    recipient_email="floor@example.net", **fields)  # fmt: skip
    return composer_for(load_settings()).compose(letter, now).data


# -- the sink ----------------------------------------------------------------------

# smtp-sink writes each message to a file of its own. On this machine's disk
# (ext4) that made the sink the slowest part, and an erratic one: the fair
# floor's 59,741 pre-built reminders took 5.9 s in one run and 23.4 s in the
# next (2026-12-07); 60,000 from four processes took 6.7 s into /tmp and 3.2
# s into /dev/shm, twice each. In memory, what is measured is the scheduler
# and the database, not the disk's writeback.
SINK_BASE = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None


def sink_dump_dir() -> tempfile.TemporaryDirectory[str]:
    """A folder for smtp-sink's messages, in memory where the machine has it,
    that smtp-sink (running as nobody) can reach the folders of."""
    folder = tempfile.TemporaryDirectory(prefix="faf-sink-", dir=SINK_BASE)
    os.chmod(folder.name, 0o755)
    return folder


@contextmanager
def smtp_sink(dump_dir: Path) -> Iterator[int]:
    binary = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"
    if not Path(binary).exists():
        sys.exit("smtp-sink not found: apt-get install postfix (it ships Postfix's smtp-sink)")
    port = free_port()
    os.chmod(dump_dir, 0o777)  # smtp-sink drops to user nobody
    process = subprocess.Popen(
        [binary, "-u", "nobody", "-d", f"{dump_dir}/%M.", f"127.0.0.1:{port}", "1000"]
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            smtplib.SMTP("127.0.0.1", port, timeout=1).quit()
            break
        except OSError:
            time.sleep(0.05)
    try:
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)


def count_recipients(dump_dir: Path) -> Counter[str]:
    counts: Counter[str] = Counter()
    for path in dump_dir.iterdir():
        with path.open("rb") as dump:
            for line in dump:
                if line.startswith(b"X-Rcpt-Args: <"):
                    counts[line[len(b"X-Rcpt-Args: <") :].split(b">", 1)[0].decode()] += 1
                elif not line.startswith(b"X-"):
                    break
    return counts


# -- running the scheduler -----------------------------------------------------------


class TreeMemory:
    """Samples a process tree's memory (PSS sum) every `interval` seconds, and
    each process's CPU time as last seen (a worker forked from the fork server
    is not the run's child: its CPU never reaches RUSAGE_CHILDREN)."""

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        self._process = psutil.Process(pid)
        self._interval = interval
        self._stop = threading.Event()
        self.peak = 0
        self.cpu: dict[int, float] = {}
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.peak = max(self.peak, process_tree_memory(self._process))
                for process in [self._process, *self._process.children(recursive=True)]:
                    times = process.cpu_times()
                    self.cpu[process.pid] = times.user + times.system
            except psutil.NoSuchProcess:
                continue
            except psutil.Error:
                return

    def stop(self) -> int:
        self._stop.set()
        self._thread.join(timeout=5)
        return self.peak


def machine_cpu() -> float:
    """Seconds of CPU the whole machine has spent working (user, nice, system,
    interrupts: /proc/stat, all cores), or 0 where there is no /proc/stat. The
    difference across a run, less the scheduler's own tree, is what the
    server, the sink and this benchmark used meanwhile."""
    try:
        with open("/proc/stat") as stat:
            fields = stat.readline().split()
    except OSError:
        return 0.0
    user, nice, system, _idle, _iowait, irq, softirq = (int(f) for f in fields[1:8])
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@dataclass
class Run:
    """A scheduler command and what it cost, counted in its own processes."""

    wall: float
    cpu: float  # user + system of the whole process tree
    peak: int  # bytes, PSS of the tree
    exit: int
    report: dict[str, Any]
    commands: Counter[str] = field(default_factory=Counter)  # by command and collection
    smtp_commands: int = 0  # lines the client wrote (EHLO, MAIL, RCPT, DATA, the message, QUIT)
    smtp_writes: int = 0  # writes, each followed by waiting for replies
    processes: int = 0
    machine_cpu: float = 0.0  # the whole machine's meanwhile (machine_cpu())

    @property
    def round_trips(self) -> int:
        return sum(self.commands.values())


def run_scheduler(env: dict[str, str], arguments: list[str]) -> Run:
    """`formafriend-scheduler <arguments> --json` in a subprocess, with the probe
    (benchmarks/probe) counting its commands in every process of its tree."""
    with tempfile.TemporaryDirectory(prefix="faf-probe-") as probe_dir:
        env = {**env, "PYTHONPATH": str(PROBE), "FAF_PROBE_DIR": probe_dir}
        # An installed package has its bytecode compiled; without it every
        # process of the run compiles 80 modules again (0.14 s each).
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        cpu_before = children_cpu()  # the sink is not reaped yet: only the scheduler's tree
        machine_before = machine_cpu()
        started = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, "-m", "formafriend_scheduler", *arguments, "--json"],
            env=env,
            cwd=REPO,
            stdout=subprocess.PIPE,
            text=True,
        )
        memory = TreeMemory(process.pid)
        stdout, _ = process.communicate()
        wall = time.perf_counter() - started
        machine = machine_cpu() - machine_before
        run = Run(wall, children_cpu() - cpu_before, memory.stop(), process.returncode, {})
        run.machine_cpu = machine
        run.report = json.loads(stdout) if stdout.strip() else {}
        # Each process's CPU: as it counted itself at exit (the probe), or as
        # last sampled when it did not get to (at most 0.1 s short).
        cpu = dict(memory.cpu)
        if os.environ.get("FAF_KEEP_PROBE"):
            shutil.copytree(probe_dir, os.environ["FAF_KEEP_PROBE"], dirs_exist_ok=True)
        for path in Path(probe_dir).glob("*.json"):
            counted = json.loads(path.read_text())
            pid = int(path.stem)
            cpu[pid] = max(cpu.get(pid, 0.0), counted["user"] + counted["system"])
            run.commands.update(counted["commands"])
            run.smtp_commands += counted["smtp_commands"]
            run.smtp_writes += counted["smtp_writes"]
            run.processes += 1
        run.cpu = max(run.cpu, sum(cpu.values()))
    return run


# -- the floor: what any correct implementation pays --------------------------------


def send_prebuilt(port: int, message: bytes, recipients: list[str]) -> None:
    """Send `message` to each recipient, one transaction each, on one
    connection, pipelining (RFC 2920) MAIL, RCPT and DATA, and each message's
    content with the next one's MAIL, RCPT and DATA: one write and one wait
    per message, the fewest a client can do without BDAT (as the scheduler)."""
    with socket.create_connection(("127.0.0.1", port)) as connection:
        reader = connection.makefile("rb")

        def replies(count: int) -> None:
            for _ in range(count):
                line = reader.readline()
                while line[3:4] == b"-":  # a multi-line reply
                    line = reader.readline()
                if line[:1] not in (b"2", b"3"):
                    raise RuntimeError(f"the sink said {line!r}")

        def envelope(recipient: str) -> bytes:
            return (
                b"MAIL FROM:<noreply@form-a-friend.com>\r\nRCPT TO:<"
                + recipient.encode()
                + b">\r\nDATA\r\n"
            )

        replies(1)
        connection.sendall(b"EHLO floor\r\n")
        replies(1)
        if not recipients:
            return
        payload = message + b".\r\n"
        connection.sendall(envelope(recipients[0]))
        replies(3)
        for following in [*recipients[1:], None]:
            if following is None:
                connection.sendall(payload)
                replies(1)
            else:
                connection.sendall(payload + envelope(following))
                replies(4)
        connection.sendall(b"QUIT\r\n")


def in_step(
    target: Any, shares: list[tuple[Any, ...]], parts: Sequence[str], extra: Sequence[str] = ()
) -> dict[str, float]:
    """Run `target(*share, barrier)` for each share in its own (spawned)
    process; each process waits on the barrier once started and after each
    part, and the parent times each part between barriers: interpreter
    start-up is not part of a floor. The `extra` parts come after and are
    timed alike, but are not in the floor's total or its CPU."""
    spawn = multiprocessing.get_context("spawn")
    barrier = spawn.Barrier(len(shares) + 1)
    processes = [spawn.Process(target=target, args=(*share, barrier)) for share in shares]
    for process in processes:
        process.start()
    barrier.wait()
    # The floor's own CPU, start-up excluded: each process read once all are
    # started and again once the last part is done.
    cpu_started = [_cpu_seconds(process.pid) for process in processes]
    machine_started = machine_cpu()
    times: dict[str, float] = {}
    for part in parts:
        started = time.perf_counter()
        barrier.wait()
        times[part] = time.perf_counter() - started
    cpu_done = [_cpu_seconds(process.pid) for process in processes]
    machine_done = machine_cpu()
    for part in extra:
        started = time.perf_counter()
        barrier.wait()
        times[part] = time.perf_counter() - started
    for process in processes:
        process.join()
        if process.exitcode != 0:
            raise RuntimeError(f"a floor process failed ({process.exitcode})")
    times["total"] = sum(times[part] for part in parts)
    times["cpu"] = sum(cpu_done) - sum(cpu_started)
    times["machine cpu"] = machine_done - machine_started
    return times


# What the crash guarantee adds to the floor, printed beside it (not in it):
# any implementation that sends each message at most once more after a crash
# must record the message durably before handing it to SMTP, and the
# scheduler also records each outcome. The same writes as
# OutboxRepository.claim and .settle, in the same bulks, on a copy of
# `scheduler_outbox` with its indexes.
OUTBOX_PART = "outbox claims and settles"


FLOOR_OUTBOX = "floor_outbox"


def outbox_claims_and_settles(uri: str, ids: list[Any], kind: str) -> None:
    """Claim the messages of invitations `ids` (inserts of CLAIM_EVERY), then
    settle each `sent` (bulks of UpdateOne by _id guarded by the claimant,
    CHUNK at a time): the scheduler's own documents and updates."""
    client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(uri)
    outbox = client.get_default_database()[FLOOR_OUTBOX]
    claimant = f"floor-{os.getpid()}"
    now = datetime.now(UTC)
    entries = [(outbox_key(invitation_id, kind), invitation_id) for invitation_id in ids]
    for start in range(0, len(entries), CLAIM_EVERY):
        docs = [
            claim_document(key, invitation_id, kind, claimant, "floor", now)
            for key, invitation_id in entries[start : start + CLAIM_EVERY]
        ]
        survive_crashes(lambda docs=docs: outbox.insert_many(docs, ordered=False))
    client.close()
    settled = Settle("", "sent", "", now).update(claimant).update  # the same $set for every key
    keys = [key for key, _ in entries]
    bulk_by_id(uri, FLOOR_OUTBOX, keys, settled, {"claimant": claimant})


def create_floor_outbox(db: Any) -> None:
    create_indexes(db, FLOOR_OUTBOX, indexes_of("scheduler_outbox"))


def _cpu_seconds(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def bulk_by_id(
    uri: str, collection: str, ids: list[Any], update: dict[str, Any], guard: dict[str, Any]
) -> None:
    """One bulk of UpdateOne({_id, **guard}, update) per CHUNK ids."""
    client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(uri)
    target = client.get_default_database()[collection]
    for start in range(0, len(ids), CHUNK):
        ops = [pymongo.UpdateOne({"_id": i, **guard}, update) for i in ids[start : start + CHUNK]]
        survive_crashes(lambda ops=ops: target.bulk_write(ops, ordered=False))
    client.close()


def survive_crashes(call: Callable[[], Any], attempts: int = 5) -> None:
    """The floor retries what the scheduler retries (store/retry.is_transient:
    a write cut by the DocumentDB kit's PostgreSQL segfault answers "unexpected
    EOF"). Its updates are guarded and its inserts keyed by _id, so a repeat
    changes nothing twice: duplicates on a repeated insert are what got in."""
    for attempt in range(attempts):
        try:
            call()
            return
        except BulkWriteError as error:
            written = error.details.get("writeErrors", [])
            if written and all(e.get("code") == 11000 for e in written) and attempt > 0:
                return
            if attempt == attempts - 1 or not is_transient(error):
                raise
        except PyMongoError as error:
            if attempt == attempts - 1 or not is_transient(error):
                raise
        time.sleep(2)


def split(items: list[Any], parts: int) -> list[list[Any]]:
    return [items[part::parts] for part in range(parts)]


# -- the report -----------------------------------------------------------------------


def reference_loop_ms(rounds: int = 5) -> float:
    """CPU time of a fixed pure-Python loop (1,000,000 multiply-adds), the
    best of `rounds`: how fast this machine runs Python right now. The
    virtual machines here do not run at one speed (the same loop of 10
    million took 0.93 to 1.10 s of CPU on an idle machine, 2026-12-07), and
    a run's CPU per item moves with it; printed so that figures from
    different hours can be set side by side."""
    best = float("inf")
    for _ in range(rounds):
        started = time.process_time()
        total = 0
        for i in range(1_000_000):
            total += i * i
        best = min(best, time.process_time() - started)
    return best * 1000


def header(server_name: str, workers: int) -> None:
    print(
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {os.cpu_count()} cores, "
        f"{psutil.virtual_memory().total // MB} MB; server: {server_name}; workers: {workers}; "
        f"reference loop {reference_loop_ms():.0f} ms of CPU (benchmarks/common.py)"
    )
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")


def print_floor(floor: dict[str, float], items: int, what: str) -> None:
    """The floor's time, each of its parts, and its own CPU per item (start-up excluded)."""
    timed = {name: s for name, s in floor.items() if name not in FLOOR_FIGURES}
    parts = ", ".join(f"{name} {s:.1f} s" for name, s in timed.items())
    print(f"floor: {floor['total']:8.1f} s  {items / floor['total']:8.0f} {what}s/s  ({parts}); "
          f"CPU {floor['cpu'] / items * 1000:.3f} ms per {what}")  # fmt: skip
    if "machine cpu" in floor:
        busy = machine_share(floor["machine cpu"], floor["total"], floor["cpu"], "floor")
        print(f"       {busy}")
    if OUTBOX_PART in floor:
        print(f"       + {OUTBOX_PART} (the crash guarantee's writes, not in the floor): "
              f"{floor[OUTBOX_PART]:.1f} s")  # fmt: skip


FLOOR_FIGURES = ("total", "cpu", "machine cpu", OUTBOX_PART)


def machine_share(machine: float, wall: float, own: float, whose: str) -> str:
    """How busy the machine's cores were: a share near 100 % means the time
    is bound by CPU (the server's, the sink's and the scheduler's together),
    not by waiting on any of them."""
    cores = os.cpu_count() or 1
    had = cores * wall
    return (f"machine CPU meanwhile: {machine:.1f} s of the {had:.1f} s its {cores} cores "
            f"had ({machine / max(had, 1e-9):.0%}); the {whose}'s own {own:.1f} s, the rest "
            f"(server, sink, this benchmark) {machine - own:.1f} s")  # fmt: skip


def print_ratios(run_wall: float, floor: dict[str, float], items: int, cpu_ms: float) -> float:
    """The run against the floor (the target), against the floor with the
    outbox's writes (what is left once the guarantee is paid for), and the
    least any implementation could take on this machine while keeping to
    `cpu_ms` of CPU per item."""
    ratio = run_wall / floor["total"]
    print(f"ratio run/floor: {ratio:.2f}")
    if OUTBOX_PART in floor:
        print(f"ratio run/(floor + {OUTBOX_PART}): "
              f"{run_wall / (floor['total'] + floor[OUTBOX_PART]):.2f}")  # fmt: skip
    if floor.get("machine cpu"):
        # What the floor made the server and the sink spend (its machine CPU
        # less its own) any implementation makes them spend too, at least:
        # the same writes, the same number of messages. Add the scheduler's
        # CPU at the target, share it over the cores: no run that uses the
        # cores perfectly takes less.
        others = floor["machine cpu"] - floor["cpu"]
        own = cpu_ms / 1000 * items
        least = (others + own) / (os.cpu_count() or 1)
        print(f"least any run at {cpu_ms} ms of CPU per item could take on these cores: "
              f"{least:.1f} s ({others:.1f} s of the server's and the sink's for the floor's "
              f"work + {own:.1f} s), {least / floor['total']:.2f} x the floor")  # fmt: skip
    return ratio


def costs(run: Run, items: int, what: str) -> dict[str, float]:
    """The scheduler's own costs per item, whatever the server."""
    figures = {
        "cpu_ms": run.cpu / items * 1000,
        "round_trips": run.round_trips / items,
        "smtp_commands": run.smtp_commands / items,
        "smtp_writes": run.smtp_writes / items,
        "peak_mb": run.peak / MB,
    }
    busiest = ", ".join(f"{name} {count}" for name, count in run.commands.most_common(9))
    print(f"costs per {what}: CPU {figures['cpu_ms']:.3f} ms (process tree, user + system), "
          f"{figures['round_trips']:.3f} database round trips, {figures['smtp_commands']:.2f} "
          f"SMTP commands in {figures['smtp_writes']:.2f} writes; peak memory "
          f"{figures['peak_mb']:.1f} MB (tree, PSS, {run.processes} processes)")  # fmt: skip
    print(f"       database commands: {run.round_trips} ({busiest})")
    if run.machine_cpu:
        print("       " + machine_share(run.machine_cpu, run.wall, run.cpu, "run"))
    print(f"       reference loop now: {reference_loop_ms():.0f} ms of CPU (the header's, before)")
    return figures


def scans(counters: ScanCounters | None) -> dict[str, tuple[int, int]]:
    if counters is None:
        return {}
    try:
        seen = counters.since_start()
    except CountersReset as reset:
        # The kit's synchronous_commit=off is MongoDB's w:1: a crash loses the
        # last writes it had acknowledged (seen here: after a crash 3 s into a
        # run, the invitations and their statuses no longer matched the
        # messages the sink had received, one per eligible contact).
        print(f"scans during the run: not counted ({reset}); PostgreSQL may have lost "
              "its last acknowledged writes (synchronous_commit=off), so a data check "
              "below can fail on that alone: run again")  # fmt: skip
        return {}
    print("scans during the run (PostgreSQL, sequential / index): " + ", ".join(
        f"{name} {seq} / {idx}" for name, (seq, idx) in seen.items()
    ))  # fmt: skip
    return seen

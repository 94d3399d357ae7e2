"""What the benchmarks share: the sink, memory and CPU sampling, running the CLI."""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import smtplib
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from formafriend_scheduler.memory import process_tree_memory  # noqa: E402
from tests.realserver import ferretdb_server  # noqa: E402
from tests.smtpserver import free_port  # noqa: E402

MB = 1024 * 1024
SERVERS = ("ferretdb", "java")


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
        help="the server to start: the embedded FerretDB, or mongo-java-server (in-memory)",
    )
    parser.add_argument("--mongodb-uri", help="a running server to use instead")


@contextmanager
def benchmark_server(kind: str, given_uri: str | None) -> Iterator[tuple[str, str]]:
    """(server URI, what it is): the URI given, else the embedded FerretDB or
    mongo-java-server, started here and stopped afterwards."""
    if given_uri:
        yield given_uri, "given URI"
    elif kind == "java":
        with mongo_java_server() as uri:
            yield uri, "mongo-java-server 1.47.0 (in-memory)"
    else:
        with ferretdb_server() as uri:
            yield uri, "embedded FerretDB (SQLite)"


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


class TreeMemory:
    """Samples a process tree's memory (PSS sum) every `interval` seconds."""

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        self._process = psutil.Process(pid)
        self._interval = interval
        self._stop = threading.Event()
        self.peak = 0
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.peak = max(self.peak, process_tree_memory(self._process))
            except psutil.NoSuchProcess:
                return

    def stop(self) -> int:
        self._stop.set()
        self._thread.join(timeout=5)
        return self.peak


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_scheduler(env: dict[str, str], arguments: list[str]) -> dict[str, Any]:
    cpu_before = children_cpu()  # the sink is not reaped yet: only the scheduler's tree counts
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "formafriend_scheduler", *arguments, "--json"],
        env=env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    memory = TreeMemory(process.pid)
    stdout, _ = process.communicate()
    wall = time.perf_counter() - started
    peak = memory.stop()
    cpu = children_cpu() - cpu_before
    report = json.loads(stdout)
    return {"wall": wall, "cpu": cpu, "peak": peak, "exit": process.returncode, "report": report}

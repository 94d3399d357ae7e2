"""The real MongoDB wire-protocol server for the test suite.

FAF_TEST_MONGODB_URI points the suite at any server (a real MongoDB, say).
Otherwise FerretDB v1.24.2, embedded in tests/ferretdb (SQLite handler), is
built with `go build` (cached) and started on a free loopback port.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

FERRETDB_SOURCE = Path(__file__).parent / "ferretdb"
FERRETDB_BINARY = FERRETDB_SOURCE / ".bin" / "ferretdb-test-server"
START_TIMEOUT_SECONDS = 60


class ServerUnavailable(RuntimeError):
    pass


def build_ferretdb() -> Path:
    """The server binary: FAF_FERRETDB_BIN, or a `go build` (incremental, about 1 s
    when cached; about a minute on a fresh machine, which downloads modules)."""
    if os.environ.get("FAF_FERRETDB_BIN"):
        return Path(os.environ["FAF_FERRETDB_BIN"])
    binary = FERRETDB_BINARY
    if shutil.which("go") is None:
        if binary.exists():
            return binary
        raise ServerUnavailable("Go is not installed: cannot build the embedded FerretDB server")
    binary.parent.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        ["go", "build", "-o", str(binary), "."],
        cwd=FERRETDB_SOURCE,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise ServerUnavailable(f"go build of the FerretDB test server failed:\n{result.stderr}")
    return binary


@contextmanager
def ferretdb_server() -> Iterator[str]:
    binary = build_ferretdb()
    with tempfile.TemporaryDirectory(prefix="faf-ferretdb-") as data_dir:
        # stderr goes to a file: an unread pipe would fill up and block the server.
        log_path = Path(data_dir) / "ferretdb.log"
        with log_path.open("w") as log_file:
            process = subprocess.Popen(
                [str(binary), "-listen", "127.0.0.1:0", "-data", data_dir],
                stdout=subprocess.PIPE,
                stderr=log_file,
                text=True,
            )
        try:
            uri = _read_first_line(process, log_path)
            yield uri
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


def _read_first_line(process: subprocess.Popen[str], log_path: Path) -> str:
    assert process.stdout is not None
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.append(process.stdout.readline()), daemon=True)  # type: ignore[union-attr]
    reader.start()
    reader.join(START_TIMEOUT_SECONDS)
    if not lines or not lines[0].startswith("mongodb://"):
        process.kill()
        raise ServerUnavailable(
            f"FerretDB test server did not start: {log_path.read_text()[-2000:]}"
        )
    return lines[0].strip()


class RestartableServer:
    """A MongoDB-wire server the fault tests can stop and start again, keeping
    its data and its address: the embedded FerretDB v1 (a process of its own,
    not the session's server), or FerretDB v2 of the DocumentDB kit (its Go
    process is stopped and started again; PostgreSQL keeps running)."""

    def __init__(self, data_dir: Path, kit: Path | None = None) -> None:
        self._data_dir = data_dir
        self._kit = kit
        self._process: subprocess.Popen[str] | None = None
        self.uri = ""

    def start(self) -> str:
        if self._kit is not None:
            self.uri = subprocess.run(
                [str(self._kit / "start.sh")], capture_output=True, text=True, check=True
            ).stdout.strip()
            return self.uri
        listen = urlsplit(self.uri).netloc if self.uri else "127.0.0.1:0"
        log_file = (self._data_dir / "ferretdb.log").open("a")
        self._process = subprocess.Popen(
            [str(build_ferretdb()), "-listen", listen, "-data", str(self._data_dir)],
            stdout=subprocess.PIPE,
            stderr=log_file,
            text=True,
        )
        log_file.close()
        self.uri = _read_first_line(self._process, self._data_dir / "ferretdb.log")
        return self.uri

    def stop(self) -> None:
        """Gone at once (SIGKILL), as a crashed or restarted server is."""
        if self._kit is not None:
            work = Path(os.environ.get("W", "/tmp/ddb"))
            pid = int((work / "ferretdb.pid").read_text())
            os.kill(pid, signal.SIGKILL)
            while _alive(pid):
                time.sleep(0.05)
            (work / "ferretdb.pid").unlink(missing_ok=True)
            return
        if self._process is not None:
            self._process.kill()
            self._process.wait(timeout=10)
            self._process = None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def documentdb_kit() -> Path | None:
    """The DocumentDB kit, when the suite runs on it (FAF_TEST_SERVER=documentdb)."""
    if os.environ.get("FAF_TEST_SERVER") != "documentdb":
        return None
    given = os.environ.get("FAF_DOCUMENTDB_KIT")
    return Path(given) if given else Path(__file__).parents[2] / "shared/servers/documentdb"


@contextmanager
def real_server() -> Iterator[str]:
    uri = os.environ.get("FAF_TEST_MONGODB_URI")
    if uri:
        yield uri
        return
    with ferretdb_server() as started:
        yield started

"""The real MongoDB wire-protocol server for the test suite.

FAF_TEST_MONGODB_URI points the suite at any server (a real MongoDB, say).
Otherwise FerretDB v1.24.2, embedded in tests/ferretdb (SQLite handler), is
built with `go build` (cached) and started on a free loopback port.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

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


@contextmanager
def real_server() -> Iterator[str]:
    uri = os.environ.get("FAF_TEST_MONGODB_URI")
    if uri:
        yield uri
        return
    with ferretdb_server() as started:
        yield started

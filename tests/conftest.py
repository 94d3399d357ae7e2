"""Shared fixtures. Every database-touching test runs on two backends:
`mongomock` (in-process) and `real` (FerretDB embedded, or the server named
by FAF_TEST_MONGODB_URI). With CI=true the real server is mandatory."""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pymongo
import pytest

from formafriend_scheduler.clock import FrozenClock
from formafriend_scheduler.config import Settings, load_settings
from formafriend_scheduler.store import Store, connect
from tests.httpserver import HttpServer
from tests.realserver import ServerUnavailable, real_server
from tests.smtpserver import SmtpServer

SETTING_NAMES = [
    Settings.model_fields[name].validation_alias.choices[0]  # type: ignore[union-attr]
    for name in Settings.model_fields
]
BACKENDS = ["mongomock", "real"]
# CI runs the suite a second time under a faked system clock (libfaketime, see
# scripts/test-faked-clock), months away from the real server's clock: FerretDB
# is a static Go binary, out of LD_PRELOAD's reach, so it keeps the real time.
# The scheduler refuses to start when the local and server clocks differ by more
# than SCHEDULER_MAX_CLOCK_SKEW_SECONDS, so every test allows any skew (nothing
# else the scheduler does reads the server's clock: lease and record times all
# come from the local one). The skew check itself is tested with its own limit,
# against the server's own clock.
ANY_CLOCK_SKEW_SECONDS = str(100 * 366 * 24 * 3600)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--slow", action="store_true", help="also run the slow fault-injection cases")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--slow"):
        return
    skip = pytest.mark.skip(reason="slow: run with ./scripts/test --slow")
    for item in items:
        if item.get_closest_marker("slow"):
            item.add_marker(skip)


def pytest_report_header() -> str:
    faked = os.environ.get("FAF_FAKED_NOW")
    return f"faked clock: started at {datetime.fromtimestamp(float(faked), UTC)}" if faked else ""


def pytest_sessionstart(session: pytest.Session) -> None:
    """The faked-clock pass must really run on the faked clock, or it proves nothing."""
    faked = os.environ.get("FAF_FAKED_NOW")
    if faked and abs(time.time() - float(faked)) > 600:
        pytest.exit(
            f"FAF_FAKED_NOW={faked} but this process's clock reads {time.time():.0f}: "
            "libfaketime is not in effect (run through scripts/test-faked-clock)",
            returncode=1,
        )


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(scope="session")
def real_server_uri() -> Iterator[str]:
    try:
        with real_server() as uri:
            yield uri
    except ServerUnavailable as error:
        if in_ci():
            pytest.fail(f"the real MongoDB-wire server is mandatory under CI: {error}")
        pytest.skip(f"no real MongoDB-wire server: {error}")


@pytest.fixture(autouse=True)
def isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No developer .env file or SCHEDULER_* variable leaks into a test, and no
    test leaves the package logging to a stream that is gone."""
    for name in [*SETTING_NAMES, "STATE_DIRECTORY"]:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SCHEDULER_MAX_CLOCK_SKEW_SECONDS", ANY_CLOCK_SKEW_SECONDS)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))  # local alert state
    monkeypatch.chdir(tmp_path)
    yield
    package_logger = logging.getLogger("formafriend_scheduler")
    for handler in list(package_logger.handlers):
        package_logger.removeHandler(handler)
    package_logger.propagate = True
    package_logger.setLevel(logging.NOTSET)


def database_uri(server_uri: str, database: str) -> str:
    parts = urlsplit(server_uri)
    return urlunsplit(parts._replace(path="/" + database))


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    if request.node.get_closest_marker("real_server_only") and name != "real":
        pytest.skip("needs a server shared by several processes")
    return name


@pytest.fixture
def mongodb_uri(backend: str, request: pytest.FixtureRequest) -> Iterator[str]:
    database = f"faf_test_{uuid.uuid4().hex[:12]}"
    if backend == "mongomock":
        yield f"mongomock://tests/{database}"
        return
    server = request.getfixturevalue("real_server_uri")
    yield database_uri(server, database)
    with pymongo.MongoClient(server, serverSelectionTimeoutMS=5000) as client:
        client.drop_database(database)


def make_settings(mongodb_uri: str, **overrides: Any) -> Settings:
    defaults: dict[str, Any] = {
        "mongodb_uri": mongodb_uri,
        "mongodb_timeout_seconds": 5,
        "mongodb_retry_attempts": 2,
    }
    return load_settings(**{**defaults, **overrides})


@pytest.fixture
def settings(mongodb_uri: str) -> Settings:
    return make_settings(mongodb_uri)


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    store = connect(settings)
    yield store
    store.close()


@pytest.fixture
def clock() -> FrozenClock:
    """Starts at this process's current time (the real one, or CI's faked one),
    so it agrees with the other processes a test starts; no test decides on the
    date it gives (scripts/test-faked-clock runs them all at month ends and DST
    changes)."""
    return FrozenClock(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    server = SmtpServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def http_server() -> Iterator[HttpServer]:
    server = HttpServer()
    server.start()
    yield server
    server.stop()

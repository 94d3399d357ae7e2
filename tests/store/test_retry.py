"""Transient errors are retried; after the retries, one line and no secret."""

from __future__ import annotations

import time

import pytest
from pymongo.errors import AutoReconnect, OperationFailure

from formafriend_scheduler.config import load_settings
from formafriend_scheduler.errors import DatabaseUnavailable, StoreError
from formafriend_scheduler.store import connect
from formafriend_scheduler.store.retry import RetryPolicy, transient


class Flaky:
    def __init__(self, failures: int, error: Exception) -> None:
        self.retry_policy = RetryPolicy(
            attempts=3, first_wait_seconds=0.001, max_wait_seconds=0.001
        )
        self.calls = 0
        self._failures = failures
        self._error = error

    @transient
    def read(self) -> str:
        self.calls += 1
        if self.calls <= self._failures:
            raise self._error
        return "ok"


def test_a_transient_error_is_retried_until_it_succeeds() -> None:
    flaky = Flaky(failures=2, error=AutoReconnect("not primary"))
    assert flaky.read() == "ok"
    assert flaky.calls == 3


def test_retries_are_bounded_then_database_unavailable() -> None:
    flaky = Flaky(failures=10, error=AutoReconnect("connection reset"))
    with pytest.raises(DatabaseUnavailable, match="after 3 attempt"):
        flaky.read()
    assert flaky.calls == 3


@pytest.mark.parametrize(
    "error",
    [
        # PostgreSQL restarting behind FerretDB (a crashed backend, a restart)
        OperationFailure("the database system is in recovery mode", code=1),
        OperationFailure("the database system is not yet accepting connections", code=1),
        OperationFailure("the database system is starting up", code=1),
        # FerretDB v2 when the PostgreSQL backend of a command died under it
        OperationFailure("unexpected EOF", code=1, details={"errmsg": "unexpected EOF"}),
        # MongoDB: a primary stepping down or shutting down
        OperationFailure("Not primary while writing", code=10107),
        OperationFailure("interrupted at shutdown", code=11600),
        OperationFailure("PrimarySteppedDown", code=189),
        OperationFailure("write failed", code=2, details={"errorLabels": ["RetryableWriteError"]}),
    ],
    ids=lambda e: str(e)[:40],
)
def test_a_server_restarting_or_stepping_down_is_retried(error: OperationFailure) -> None:
    flaky = Flaky(failures=2, error=error)
    assert flaky.read() == "ok" and flaky.calls == 3


def test_a_restart_that_outlasts_the_retries_is_unavailable_not_a_failure() -> None:
    flaky = Flaky(failures=10, error=OperationFailure("database system is in recovery mode", 1))
    with pytest.raises(DatabaseUnavailable, match="recovery mode"):
        flaky.read()


def test_patience_keeps_retrying_for_a_duration_whatever_the_attempts() -> None:
    flaky = Flaky(failures=6, error=AutoReconnect("connection refused"))
    flaky.retry_policy = RetryPolicy(1, 0.001, 0.001, patience_seconds=5)
    assert flaky.read() == "ok" and flaky.calls == 7


def test_a_permanent_error_is_not_retried_and_becomes_a_store_error() -> None:
    flaky = Flaky(failures=10, error=OperationFailure("bad query", code=2))
    with pytest.raises(StoreError, match="bad query"):
        flaky.read()
    assert flaky.calls == 1


def test_an_unreachable_server_gives_one_line_without_the_password() -> None:
    settings = load_settings(
        mongodb_uri="mongodb://app:hunter2secret@127.0.0.1:9/faf",
        mongodb_timeout_seconds=0.2,
        mongodb_retry_attempts=2,
    )
    started = time.monotonic()
    with pytest.raises(DatabaseUnavailable) as raised:
        connect(settings).ping()
    message = str(raised.value)
    assert "\n" not in message
    assert "hunter2secret" not in message
    assert "127.0.0.1:9" in message
    assert time.monotonic() - started < 10

"""Transient-error retries (tenacity) shared by every repository method."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ParamSpec, Protocol, TypeVar

from pymongo.errors import (
    ConnectionFailure,
    ExecutionTimeout,
    OperationFailure,
    PyMongoError,
    WTimeoutError,
)
from tenacity import (
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential,
)

from formafriend_scheduler.errors import DatabaseUnavailable, StoreError
from formafriend_scheduler.redact import one_line

# Network errors, not-primary (AutoReconnect is a ConnectionFailure), server
# selection and operation timeouts: the kind of error a later attempt can fix.
TRANSIENT_ERRORS: tuple[type[PyMongoError], ...] = (
    ConnectionFailure,
    ExecutionTimeout,
    WTimeoutError,
)
# Server error codes a later attempt can get past: a primary stepping down or
# shutting down, a node restarting or unreachable (MongoDB's retryable-reads
# and retryable-writes lists: HostUnreachable, HostNotFound, NetworkTimeout,
# ShutdownInProgress, PrimarySteppedDown, ExceededTimeLimit, SocketException,
# NotWritablePrimary, InterruptedAtShutdown, InterruptedDueToReplStateChange,
# NotPrimaryNoSecondaryOk, NotPrimaryOrSecondary).
TRANSIENT_CODES = frozenset({6, 7, 89, 91, 189, 262, 9001, 10107, 11600, 11602, 13435, 13436})
# FerretDB passes PostgreSQL's own words on while PostgreSQL restarts (after a
# crash of a backend, or a restart): code 1, with one of these messages; a
# command whose backend died under it gets "unexpected EOF" (seen on
# FerretDB v2 when a PostgreSQL backend crashed mid-insert).
_RESTARTING = re.compile(
    r"database system is (in recovery mode|starting up|shutting down|not yet accepting)"
    r"|not yet accepting connections|terminating connection due to administrator command"
    r"|^unexpected EOF\b",
    re.IGNORECASE,
)

P = ParamSpec("P")
R = TypeVar("R")


def is_transient(error: BaseException) -> bool:
    """An error a later attempt can get past: the network, a timeout, a
    server stepping down or restarting."""
    if isinstance(error, TRANSIENT_ERRORS):
        return True
    if isinstance(error, OperationFailure):
        return (
            error.code in TRANSIENT_CODES
            or error.has_error_label("RetryableWriteError")
            or _RESTARTING.search(str(error)) is not None
        )
    return False


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    first_wait_seconds: float = 0.5
    max_wait_seconds: float = 8.0
    # Optional: keep trying until this many seconds have passed, whatever
    # `attempts` says (the last writes of a run wait out a server restart).
    patience_seconds: float | None = None

    def retrying(self) -> Retrying:
        return Retrying(
            stop=stop_after_attempt(self.attempts)
            if self.patience_seconds is None
            else stop_after_delay(self.patience_seconds),
            wait=wait_exponential(multiplier=self.first_wait_seconds, max=self.max_wait_seconds),
            retry=retry_if_exception(is_transient),
            reraise=True,
        )


class HasRetryPolicy(Protocol):
    retry_policy: RetryPolicy


def describe_transient(error: PyMongoError) -> str:
    # A server-selection error carries the whole topology description: keep
    # the first clause, which says which host failed and why.
    text = str(error)
    for tail in (" (configured timeouts", ", Timeout:", " Topology Description"):
        text = text.split(tail, 1)[0]
    return one_line(text, 200)


def transient(method: Callable[P, R]) -> Callable[P, R]:
    """Retry a repository method on transient errors, then raise DatabaseUnavailable.

    Any other driver error becomes a StoreError, so callers above `store` never
    need to know pymongo's exception types.
    """

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        owner: Any = args[0]
        policy: RetryPolicy = owner.retry_policy
        try:
            for attempt in policy.retrying():
                with attempt:
                    return method(*args, **kwargs)
        except PyMongoError as error:
            if is_transient(error):
                tries = (
                    f"{policy.attempts} attempt(s)"
                    if policy.patience_seconds is None
                    else f"{policy.patience_seconds:g} s of retries"
                )
                raise DatabaseUnavailable(
                    f"MongoDB unreachable after {tries}: {describe_transient(error)}"
                ) from None
            raise StoreError(f"{type(error).__name__}: {one_line(str(error), 200)}") from error
        raise AssertionError("unreachable: tenacity either returns or raises")

    return wrapper

"""Transient-error retries (tenacity) shared by every repository method."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ParamSpec, Protocol, TypeVar

from pymongo.errors import ConnectionFailure, ExecutionTimeout, PyMongoError, WTimeoutError
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from formafriend_scheduler.errors import DatabaseUnavailable, StoreError
from formafriend_scheduler.redact import one_line

# Network errors, not-primary (AutoReconnect is a ConnectionFailure), server
# selection and operation timeouts: the kind of error a later attempt can fix.
TRANSIENT_ERRORS: tuple[type[PyMongoError], ...] = (
    ConnectionFailure,
    ExecutionTimeout,
    WTimeoutError,
)

P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    first_wait_seconds: float = 0.5
    max_wait_seconds: float = 8.0

    def retrying(self) -> Retrying:
        return Retrying(
            stop=stop_after_attempt(self.attempts),
            wait=wait_exponential(multiplier=self.first_wait_seconds, max=self.max_wait_seconds),
            retry=retry_if_exception_type(TRANSIENT_ERRORS),
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
        except TRANSIENT_ERRORS as error:
            raise DatabaseUnavailable(
                f"MongoDB unreachable after {policy.attempts} attempt(s): "
                f"{describe_transient(error)}"
            ) from None
        except PyMongoError as error:
            raise StoreError(f"{type(error).__name__}: {one_line(str(error), 200)}") from error
        raise AssertionError("unreachable: tenacity either returns or raises")

    return wrapper

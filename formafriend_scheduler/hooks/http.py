"""Small HTTP calls for hooks (stdlib urllib): a timeout, retries with
backoff on network errors and 5xx, never an exception out of a sink."""

from __future__ import annotations

import urllib.error
import urllib.request

from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential


class RetryableHttpError(Exception):
    pass


class HttpRefused(Exception):
    """A 4xx answer: retrying the same request will not help."""


def request(
    method: str,
    url: str,
    *,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float,
    attempts: int,
    first_wait: float = 0.5,
) -> int:
    """Send the request; returns the final status code or raises after the attempts."""

    def once() -> int:
        call = urllib.request.Request(url, data=body, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(call, timeout=timeout) as response:
                return int(response.status)
        except urllib.error.HTTPError as error:
            if error.code >= 500 or error.code == 429:
                raise RetryableHttpError(f"HTTP {error.code}") from None
            raise HttpRefused(f"HTTP {error.code}") from None
        except (urllib.error.URLError, TimeoutError, OSError) as error:
            raise RetryableHttpError(str(getattr(error, "reason", error))) from None

    retrying = Retrying(
        stop=stop_after_attempt(attempts),
        wait=wait_exponential(multiplier=first_wait, max=10),
        retry=retry_if_exception_type(RetryableHttpError),
        reraise=True,
    )
    for attempt in retrying:
        with attempt:
            return once()
    raise AssertionError("unreachable: tenacity either returns or raises")

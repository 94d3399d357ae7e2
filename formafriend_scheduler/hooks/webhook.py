"""Events as JSON to a webhook, optionally signed with a shared secret.

Signature: `X-FAF-Signature: sha256=<hex>`, the HMAC-SHA256 with the secret of
`<X-FAF-Timestamp>.<body>`; a receiver recomputes it and rejects old
timestamps, so a captured request cannot be replayed later.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from formafriend_scheduler.hooks.events import Event
from formafriend_scheduler.hooks.http import HttpRefused, RetryableHttpError, request

log = logging.getLogger(__name__)


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)  # ObjectId and other BSON scalars


def event_json(event: Event) -> bytes:
    body = {"event": event.name, "at": event.at, **event.payload}
    return json.dumps(body, default=_plain, ensure_ascii=False).encode("utf-8")


def signature(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


class WebhookSink:
    def __init__(
        self,
        url: str,
        events: frozenset[str],
        *,
        secret: str | None,
        timeout: float,
        attempts: int,
        clock_seconds: Callable[[], float],
        first_wait: float = 0.5,
    ) -> None:
        self._url = url
        self._events = events
        self._secret = secret
        self._timeout = timeout
        self._attempts = attempts
        self._clock_seconds = clock_seconds
        self._first_wait = first_wait

    def handle(self, event: Event) -> None:
        if "*" not in self._events and event.name not in self._events:
            return
        body = event_json(event)
        headers = {"Content-Type": "application/json", "X-FAF-Event": event.name}
        if self._secret:
            timestamp = str(int(self._clock_seconds()))
            headers["X-FAF-Timestamp"] = timestamp
            headers["X-FAF-Signature"] = signature(self._secret, timestamp, body)
        try:
            request(
                "POST",
                self._url,
                body=body,
                headers=headers,
                timeout=self._timeout,
                attempts=self._attempts,
                first_wait=self._first_wait,
            )
        except (RetryableHttpError, HttpRefused) as error:
            log.warning(
                "webhook for %s failed after %d attempt(s): %s", event.name, self._attempts, error
            )

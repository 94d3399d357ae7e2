"""Dead-man's-switch pings in the healthchecks.io convention.

`<url>/start?rid=<run id>` when a run begins; `<url>?rid=...` when it ends
with exit 0, `<url>/<exit code>?rid=...` otherwise. The run id pairs a start
with its end even when runs overlap, so a monitor sees a run that never
happened (no ping in the period) or never finished (a start without an end).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from urllib.parse import quote

from formafriend_scheduler.hooks.events import JOB_COMPLETED, JOB_FAILED, JOB_STARTED, Event
from formafriend_scheduler.hooks.http import HttpRefused, RetryableHttpError, request

log = logging.getLogger(__name__)


class PingSink:
    def __init__(
        self,
        url_for: Callable[[str], str | None],
        *,
        timeout: float,
        attempts: int,
        first_wait: float = 0.5,
    ) -> None:
        self._url_for = url_for
        self._timeout = timeout
        self._attempts = attempts
        self._first_wait = first_wait

    def handle(self, event: Event) -> None:
        payload = event.payload
        job_type = payload.get("type") or payload.get("jobType")
        run_id = payload.get("jobId")
        if event.name not in (JOB_STARTED, JOB_COMPLETED, JOB_FAILED) or not job_type or not run_id:
            return
        base = self._url_for(str(job_type))
        if not base:
            return
        if event.name == JOB_STARTED:
            suffix = "/start"
        else:
            code = int(payload.get("exitCode", 0 if event.name == JOB_COMPLETED else 1))
            suffix = "" if code == 0 else f"/{code}"
        url = f"{base}{suffix}?rid={quote(str(run_id))}"
        try:
            request(
                "GET",
                url,
                timeout=self._timeout,
                attempts=self._attempts,
                first_wait=self._first_wait,
            )
        except (RetryableHttpError, HttpRefused) as error:
            log.warning("ping %s for %s failed: %s", suffix or "success", run_id, error)

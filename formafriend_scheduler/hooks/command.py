"""Events to an operator's command: the event JSON on its stdin.

How an operator wires in Slack, PagerDuty or a mailer without code of ours:
`SCHEDULER_EVENT_COMMAND='/usr/local/bin/notify-team'`. The command runs
through /bin/sh with FAF_EVENT set to the event name.
"""

from __future__ import annotations

import logging
import os
import subprocess

from formafriend_scheduler.hooks.events import Event
from formafriend_scheduler.hooks.webhook import event_json
from formafriend_scheduler.redact import one_line

log = logging.getLogger(__name__)


class CommandSink:
    def __init__(
        self,
        command: str,
        events: frozenset[str],
        timeout: float,
        hidden_variables: frozenset[str] = frozenset(),
    ) -> None:
        self._command = command
        self._events = events
        self._timeout = timeout
        # The scheduler's secrets (MONGODB_URI, SMTP_URL, ...) stay with it.
        self._hidden = hidden_variables

    def handle(self, event: Event) -> None:
        if "*" not in self._events and event.name not in self._events:
            return
        try:
            result = subprocess.run(
                ["/bin/sh", "-c", self._command],
                input=event_json(event),
                capture_output=True,
                timeout=self._timeout,
                env={
                    **{k: v for k, v in os.environ.items() if k not in self._hidden},
                    "FAF_EVENT": event.name,
                },
                check=False,
            )
        except subprocess.TimeoutExpired:
            log.warning("event command for %s timed out after %.0f s", event.name, self._timeout)
            return
        except OSError as error:
            log.warning("event command for %s could not start: %s", event.name, error)
            return
        if result.returncode != 0:
            stderr = one_line(result.stderr.decode("utf-8", "replace"), 300)
            log.warning("event command for %s exited %d: %s", event.name, result.returncode, stderr)

"""Alerts by e-mail to SCHEDULER_ALERT_EMAIL, through the configured transport."""

from __future__ import annotations

import html
import json
import logging
from collections.abc import Callable
from datetime import datetime
from email.utils import format_datetime
from typing import Any

from formafriend_scheduler.hooks.events import ALERTS_RESOLVED, ALERTS_TRIGGERED, JOB_FAILED, Event
from formafriend_scheduler.mail.compose import ComposedEmail
from formafriend_scheduler.mail.mime import address, encoded_words, multipart_alternative
from formafriend_scheduler.mail.transports import Outcome, Transport

log = logging.getLogger(__name__)
ALERT_EVENTS = frozenset({ALERTS_TRIGGERED, ALERTS_RESOLVED, JOB_FAILED})


def summary_of(event: Event) -> tuple[str, str]:
    """(subject line, plain-text body) for an alert-worthy event."""
    payload = event.payload
    if event.name == JOB_FAILED:
        error = payload.get("error") or {}
        subject = f"{payload.get('jobType')} failed: {error.get('message', '')}"
    else:
        alerts: list[dict[str, Any]] = payload.get("alerts") or []
        worst = alerts[0] if alerts else {}
        verb = (
            "resolved" if event.name == ALERTS_RESOLVED else str(worst.get("severity", "")).upper()
        )
        more = f" (+{len(alerts) - 1} more)" if len(alerts) > 1 else ""
        subject = f"{verb}: {worst.get('message', 'alert')}{more}"
    body = json.dumps({"event": event.name, **payload}, default=str, indent=2, ensure_ascii=False)
    return f"[formafriend-scheduler] {subject}"[:200], body


class AlertEmailSink:
    def __init__(
        self,
        recipients: list[str],
        from_address: str,
        transport_factory: Callable[[], Transport],
        now: Callable[[], datetime],
    ) -> None:
        self._recipients = recipients
        self._from = from_address
        self._transport_factory = transport_factory
        self._now = now

    def handle(self, event: Event) -> None:
        if event.name not in ALERT_EVENTS:
            return
        subject, text = summary_of(event)
        page = f"<pre>{html.escape(text)}</pre>"
        transport = self._transport_factory()
        try:
            for recipient in self._recipients:
                data = multipart_alternative(
                    [
                        ("Subject", encoded_words(subject)),
                        ("From", address("formafriend-scheduler", self._from)),
                        ("To", recipient),
                        ("Date", format_datetime(self._now())),
                    ],
                    text,
                    page,
                )
                delivery = transport.deliver(ComposedEmail(self._from, recipient, "<alert>", data))
                if delivery.outcome is not Outcome.SENT:
                    log.warning("alert e-mail to %s not sent: %s", recipient, delivery.detail)
        finally:
            transport.close()

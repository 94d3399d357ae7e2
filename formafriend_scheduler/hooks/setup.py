"""The event bus a command uses: the log sink plus every configured sink."""

from __future__ import annotations

import time

from formafriend_scheduler.clock import Clock
from formafriend_scheduler.config import SECRETS, Settings
from formafriend_scheduler.hooks.command import CommandSink
from formafriend_scheduler.hooks.events import EventBus, EventSink, LogSink
from formafriend_scheduler.hooks.mailer import AlertEmailSink
from formafriend_scheduler.hooks.pings import PingSink
from formafriend_scheduler.hooks.webhook import WebhookSink
from formafriend_scheduler.mail.setup import transport_for


def event_bus_for(settings: Settings, clock: Clock) -> EventBus:
    sinks: list[EventSink] = [LogSink()]
    if settings.webhook_url:
        sinks.append(
            WebhookSink(
                settings.webhook_url,
                settings.event_set(settings.webhook_events),
                secret=settings.webhook_secret,
                timeout=settings.webhook_timeout_seconds,
                attempts=settings.webhook_attempts,
                clock_seconds=time.time,
            )
        )
    if settings.event_command:
        sinks.append(
            CommandSink(
                settings.event_command,
                settings.event_set(settings.event_command_events),
                settings.event_command_timeout_seconds,
                hidden_variables=SECRETS,
            )
        )
    if settings.alert_email:
        sinks.append(
            AlertEmailSink(
                settings.alert_email.split(","),
                settings.email_from_address,
                # Alerts must not hold a run: one short attempt per event.
                lambda: transport_for(
                    settings, timeout=settings.webhook_timeout_seconds, attempts=1
                ),
                clock.now,
            )
        )
    if any(settings.ping_url_for(job) for job in PINGED_JOBS):
        sinks.append(
            PingSink(
                settings.ping_url_for,
                timeout=settings.webhook_timeout_seconds,
                attempts=settings.webhook_attempts,
            )
        )
    return EventBus(clock, sinks)


PINGED_JOBS = ("monthly-invitations", "reminders", "cleanup", "health-check")

"""The composer and transport the configuration describes."""

from __future__ import annotations

import socket

from formafriend_scheduler.config import Settings
from formafriend_scheduler.mail.compose import Composer
from formafriend_scheduler.mail.transports import (
    COMMAND_TIMEOUT_SECONDS,
    Transport,
    build_transport,
)


def composer_for(settings: Settings) -> Composer:
    return Composer(
        from_address=settings.email_from_address,
        from_name=settings.email_from_name,
        base_url=settings.app_base_url,
        templates_dir=settings.email_templates_dir,
        one_click_unsubscribe=settings.email_one_click_unsubscribe,
        unsubscribe_mailto=settings.email_unsubscribe_mailto,
    )


def transport_for(
    settings: Settings, *, timeout: float = COMMAND_TIMEOUT_SECONDS, attempts: int = 3
) -> Transport:
    return build_transport(
        kind=settings.email_transport,
        smtp_url=settings.smtp_url,
        fallback_url=settings.smtp_fallback_url,
        outbox_dir=settings.email_outbox_dir,
        local_hostname=socket.getfqdn(),
        timeout=timeout,
        attempts=attempts,
    )

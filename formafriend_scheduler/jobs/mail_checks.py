"""Can the e-mail jobs deliver? The SMTP servers answer (no message sent), or
the `file` transport's folder has room."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from formafriend_scheduler.config import Settings, mask_url
from formafriend_scheduler.errors import HealthCode
from formafriend_scheduler.jobs.health_types import Check
from formafriend_scheduler.mail.transports import MailUnavailable, probe_smtp

DISK_WARNING_SHARE = 0.10
DISK_CRITICAL_SHARE = 0.02
SmtpProbe = Callable[[str], str]


def check_mail(settings: Settings, probe: SmtpProbe = probe_smtp) -> Check:
    if settings.email_transport == "file":
        assert settings.email_outbox_dir is not None
        return check_outbox_disk(settings.email_outbox_dir)
    return check_smtp(settings, probe)


def check_smtp(settings: Settings, probe: SmtpProbe) -> Check:
    servers = [("primary", settings.smtp_url)]
    if settings.smtp_fallback_url:
        servers.append(("fallback", settings.smtp_fallback_url))
    answers: dict[str, str] = {}
    for role, url in servers:
        if not url:
            continue
        try:
            answers[role] = probe(url)
        except MailUnavailable as error:
            answers[role] = f"unreachable: {error}"
    details = {role: f"{mask_url(url or '')}: {answers.get(role)}" for role, url in servers}
    down = [role for role, answer in answers.items() if answer.startswith("unreachable")]
    if not down:
        return Check("smtp", HealthCode.OK, "; ".join(answers.values()), details)
    if len(down) < len(servers):
        return Check(
            "smtp",
            HealthCode.WARNING,
            f"{', '.join(down)} SMTP server down; the other answers",
            details,
        )
    return Check("smtp", HealthCode.CRITICAL, "; ".join(answers.values()), details)


def check_outbox_disk(folder: Path) -> Check:
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent  # the folder is created on the first message
    usage = shutil.disk_usage(existing)
    free = usage.free / usage.total if usage.total else 0.0
    details = {
        "folder": str(folder),
        "freeMB": usage.free // (1024 * 1024),
        "freePercent": round(free * 100, 1),
    }
    summary = f"{free:.0%} free on the disk of {folder}"
    if free < DISK_CRITICAL_SHARE:
        return Check("outbox-disk", HealthCode.CRITICAL, summary, details)
    if free < DISK_WARNING_SHARE:
        return Check("outbox-disk", HealthCode.WARNING, summary, details)
    return Check("outbox-disk", HealthCode.OK, summary, details)

"""health-check's mail check: SMTP answers without a message, or the outbox has room."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from formafriend_scheduler.config import load_settings
from formafriend_scheduler.errors import HealthCode
from formafriend_scheduler.jobs import mail_checks
from formafriend_scheduler.jobs.mail_checks import check_mail
from tests.smtpserver import SmtpServer, free_port


def test_an_answering_smtp_server_is_ok_and_receives_nothing(smtp_server: SmtpServer) -> None:
    check = check_mail(load_settings(smtp_url=smtp_server.url))
    assert check.code is HealthCode.OK and "NOOP with 250" in check.summary
    assert smtp_server.received == []


def test_a_dead_server_is_critical_and_a_working_fallback_makes_it_a_warning(
    smtp_server: SmtpServer,
) -> None:
    dead = f"smtp://user:pw-secret@127.0.0.1:{free_port()}?security=none"
    alone = check_mail(load_settings(smtp_url=dead))
    assert alone.code is HealthCode.CRITICAL
    with_fallback = check_mail(load_settings(smtp_url=dead, smtp_fallback_url=smtp_server.url))
    assert with_fallback.code is HealthCode.WARNING
    assert "pw-secret" not in repr(alone) + repr(with_fallback)


def test_the_file_transport_checks_the_disk_of_its_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = load_settings(email_transport="file", email_outbox_dir=tmp_path / "outbox")
    assert check_mail(settings).code is HealthCode.OK  # the folder does not exist yet
    monkeypatch.setattr(
        mail_checks.shutil, "disk_usage", lambda path: SimpleNamespace(total=100, free=5, used=95)
    )
    assert check_mail(settings).code is HealthCode.WARNING
    monkeypatch.setattr(
        mail_checks.shutil, "disk_usage", lambda path: SimpleNamespace(total=100, free=1, used=99)
    )
    assert check_mail(settings).code is HealthCode.CRITICAL

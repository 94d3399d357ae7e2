"""Every process of a run logs alike: the workers' lines have the parent's
level, format (JSON lines off a terminal) and redaction."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from bson import ObjectId

from formafriend_scheduler.clock import SystemClock
from formafriend_scheduler.config import load_settings
from formafriend_scheduler.eligibility import Month
from formafriend_scheduler.store import connect
from tests.jobs.monthly_helpers import DUE_WHENEVER
from tests.smtpserver import SmtpServer

REPO = Path(__file__).parents[2]
SECRET = "Sup3rSecretHookKey"


@pytest.mark.real_server_only
def test_workers_log_json_lines_at_the_parents_level_with_secrets_masked(
    mongodb_uri: str, smtp_server: SmtpServer
) -> None:
    store = connect(load_settings(mongodb_uri=mongodb_uri))
    # Given a due user whose timezone preference is invalid (and happens to
    # be the webhook's secret), with one contact whose address is not one,
    user = {"_id": ObjectId(), "email": "a@x.org", "preferences": {"timezone": SECRET}}
    store.db["users"].insert_one(user)
    store.db["contacts"].insert_many(
        [{"ownerId": user["_id"], "email": e} for e in ("b@x.org", "not an address")]
    )
    month = str(Month.containing(SystemClock().now(), load_settings().zone))
    env = {
        **os.environ,
        "MONGODB_URI": mongodb_uri,
        "SMTP_URL": smtp_server.url,
        "SCHEDULER_WEBHOOK_SECRET": SECRET,
        **DUE_WHENEVER,
    }
    # when a run with two workers creates its invitations (in the workers),
    result = subprocess.run(
        [sys.executable, "-m", "formafriend_scheduler", "--log-level", "info",
         "monthly-invitations", "--workers", "2", "--month", month],
        env=env, cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip

    # then their info and warning lines are JSON lines like the parent's, masked.
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stderr.splitlines()]  # all JSON
    messages = [line["message"] for line in lines]
    assert any("using the defaults" in m and "***" in m for m in messages), messages
    assert any("skipped malformed contact" in m for m in messages), messages
    assert {line["level"] for line in lines} >= {"info", "warning"}
    assert SECRET not in result.stderr

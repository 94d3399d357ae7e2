"""Job types, and run ids: readable, sortable by time, and unique."""

from __future__ import annotations

import secrets
from datetime import datetime

# The jobs that keep records in scheduler_jobs (health checks keep theirs in
# scheduler_health).
JOB_TYPES = ("monthly-invitations", "reminders", "cleanup")


def new_run_id(job_type: str, now: datetime) -> str:
    return f"{job_type}-{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"

"""A health check's result and the report that combines them."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from formafriend_scheduler.errors import HealthCode

STATUS_WORDS = {
    HealthCode.OK: "healthy",
    HealthCode.WARNING: "degraded",
    HealthCode.CRITICAL: "unhealthy",
    HealthCode.UNKNOWN: "unknown",
}
# How bad each status is when combining checks: a failed check outranks one
# that could not be run (the monitoring-plugin convention).
SEVERITY = {HealthCode.OK: 0, HealthCode.UNKNOWN: 1, HealthCode.WARNING: 2, HealthCode.CRITICAL: 3}


@dataclass(frozen=True)
class Check:
    name: str
    code: HealthCode
    summary: str
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.code.name,
            "summary": self.summary,
            "details": self.details,
        }


@dataclass(frozen=True)
class HealthReport:
    checked_at: datetime
    checks: list[Check]
    duration_ms: int

    @property
    def code(self) -> HealthCode:
        return max(
            (check.code for check in self.checks),
            key=SEVERITY.__getitem__,
            default=HealthCode.UNKNOWN,
        )

    @property
    def status(self) -> str:
        return STATUS_WORDS[self.code]

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "code": int(self.code),
            "checkedAt": self.checked_at,
            "host": socket.gethostname(),
            "durationMs": self.duration_ms,
            "checks": [check.as_dict() for check in self.checks],
        }

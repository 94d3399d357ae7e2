"""What a run did, in three numbers every job type can give: items processed,
items delivered, items that failed. Alerts, metrics and Prometheus share them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# job type -> (processed, delivered, failed) stat names
_STATS: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    "monthly-invitations": (
        ("totalInvitations",),
        ("sentInvitations",),
        ("failedInvitations", "bouncedInvitations"),
    ),
    "reminders": (
        ("candidatesChecked",),
        ("firstRemindersSent", "secondRemindersSent"),
        ("failedReminders", "bouncedReminders"),
    ),
    "cleanup": (
        (
            "expiredInvitations",
            "deletedInvitations",
            "resetTemporaryBounces",
            "deactivatedContacts",
            "abandonedJobs",
        ),
        (),
        ("failedSteps",),
    ),
}


@dataclass(frozen=True)
class RunFigures:
    processed: int
    delivered: int
    failed: int

    @property
    def error_rate(self) -> float:
        attempted = self.delivered + self.failed
        return self.failed / attempted if attempted else 0.0


def figures_of(job_type: str, stats: dict[str, Any]) -> RunFigures:
    processed, delivered, failed = _STATS.get(job_type, ((), (), ()))

    def total(names: tuple[str, ...]) -> int:
        return sum(int(stats.get(name) or 0) for name in names)

    return RunFigures(total(processed), total(delivered), total(failed))

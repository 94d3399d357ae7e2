"""The seed's getDetailedMetrics: per job type over a window, from the per-run
metrics documents (`scheduler_metrics`)."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

SPARKS = "▁▂▃▄▅▆▇█"
SUCCEEDED = ("success", "partial")


@dataclass
class JobMetrics:
    job: str
    runs: int = 0
    succeeded: int = 0
    durations: list[float] = field(default_factory=list)  # oldest first
    processed: int = 0
    delivered: int = 0
    failed: int = 0
    peak_memory_bytes: int = 0

    @property
    def success_rate(self) -> float:
        return self.succeeded / self.runs if self.runs else 0.0

    @property
    def error_rate(self) -> float:
        attempted = self.delivered + self.failed
        return self.failed / attempted if attempted else 0.0

    @property
    def items_per_second(self) -> float:
        busy = sum(self.durations)
        return self.processed / busy if busy else 0.0

    def percentile(self, share: float) -> float:
        """Nearest-rank percentile of the run durations."""
        if not self.durations:
            return 0.0
        ordered = sorted(self.durations)
        rank = max(1, math.ceil(share * len(ordered)))
        return ordered[rank - 1]

    def sparkline(self, last: int = 20) -> str:
        recent = self.durations[-last:]
        if not recent:
            return ""
        low, high = min(recent), max(recent)
        span = (high - low) or 1.0
        return "".join(SPARKS[min(7, int((d - low) / span * 7))] for d in recent)

    def as_dict(self) -> dict[str, Any]:
        return {
            "job": self.job,
            "runs": self.runs,
            "successRate": round(self.success_rate, 4),
            "durationSeconds": {
                "p50": round(self.percentile(0.5), 3),
                "p95": round(self.percentile(0.95), 3),
                "max": round(max(self.durations, default=0.0), 3),
                "recent": [round(d, 3) for d in self.durations[-20:]],
            },
            "itemsProcessed": self.processed,
            "itemsPerSecond": round(self.items_per_second, 2),
            "peakMemoryBytes": self.peak_memory_bytes,
            "errorRate": round(self.error_rate, 4),
        }


def summarise(documents: Iterable[dict[str, Any]]) -> list[JobMetrics]:
    """`documents` in recordedAt order; one JobMetrics per job type, by name."""
    by_job: dict[str, JobMetrics] = defaultdict(lambda: JobMetrics(""))
    for doc in documents:
        job = str(doc.get("type", "?"))
        metrics = by_job[job]
        metrics.job = job
        metrics.runs += 1
        metrics.succeeded += doc.get("status") in SUCCEEDED
        metrics.durations.append(float(doc.get("durationSeconds") or 0.0))
        metrics.processed += int(doc.get("itemsProcessed") or 0)
        metrics.delivered += int(doc.get("sent") or 0)
        metrics.failed += int(doc.get("failed") or 0)
        metrics.peak_memory_bytes = max(
            metrics.peak_memory_bytes, int(doc.get("peakMemoryBytes") or 0)
        )
    return [by_job[job] for job in sorted(by_job)]

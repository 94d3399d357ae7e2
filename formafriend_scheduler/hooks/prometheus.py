"""The node_exporter textfile: every job type's last run, last success and
running totals, written atomically (prometheus_client writes a temporary
file and renames it) after each run and each health check.

Each run is its own process, so the figures come from MongoDB (the job
records and `scheduler_counters`), and every run writes all job types.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from prometheus_client import generate_latest
from prometheus_client.core import CollectorRegistry, CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from formafriend_scheduler.figures import figures_of
from formafriend_scheduler.files import atomic_write

PREFIX = "formafriend_scheduler"


@dataclass
class JobSnapshot:
    last: dict[str, Any] | None = None
    last_success: dict[str, Any] | None = None
    counters: dict[str, Any] = field(default_factory=dict)


@dataclass
class Snapshot:
    jobs: dict[str, JobSnapshot]
    health_code: int | None = None


def _seconds(value: Any) -> float | None:
    return value.timestamp() if isinstance(value, datetime) else None


class SnapshotCollector(Collector):
    def __init__(self, snapshot: Snapshot) -> None:
        self._snapshot = snapshot

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        gauges = {
            "last_start": GaugeMetricFamily(
                f"{PREFIX}_last_start_timestamp_seconds",
                "When the last run started.",
                labels=["job"],
            ),
            "last_success": GaugeMetricFamily(
                f"{PREFIX}_last_success_timestamp_seconds",
                "When the last successful run started.",
                labels=["job"],
            ),
            "duration": GaugeMetricFamily(
                f"{PREFIX}_last_duration_seconds", "Duration of the last run.", labels=["job"]
            ),
            "exit_code": GaugeMetricFamily(
                f"{PREFIX}_last_exit_code", "Exit code of the last run.", labels=["job"]
            ),
            "memory": GaugeMetricFamily(
                f"{PREFIX}_last_peak_memory_bytes",
                "Peak memory of the last run's process tree (PSS).",
                labels=["job"],
            ),
            "sent": GaugeMetricFamily(
                f"{PREFIX}_last_items_sent", "Items delivered by the last run.", labels=["job"]
            ),
            "errors": GaugeMetricFamily(
                f"{PREFIX}_last_items_failed", "Items that failed in the last run.", labels=["job"]
            ),
        }
        sent_total = CounterMetricFamily(
            f"{PREFIX}_items_sent", "Items delivered, all runs.", labels=["job"]
        )
        errors_total = CounterMetricFamily(
            f"{PREFIX}_errors", "Items that failed, all runs.", labels=["job"]
        )
        runs_total = CounterMetricFamily(
            f"{PREFIX}_runs", "Runs by outcome.", labels=["job", "status"]
        )
        for job, snap in self._snapshot.jobs.items():
            last = snap.last or {}
            figures = figures_of(job, last.get("stats") or {}) if snap.last else None
            for key, value in (
                ("last_start", _seconds(last.get("startedAt"))),
                ("last_success", _seconds((snap.last_success or {}).get("startedAt"))),
                (
                    "duration",
                    (last["durationMs"] / 1000) if last.get("durationMs") is not None else None,
                ),
                ("exit_code", last.get("exitCode")),
                ("memory", last.get("peakMemoryBytes")),
                ("sent", figures.delivered if figures else None),
                ("errors", figures.failed if figures else None),
            ):
                if value is not None:
                    gauges[key].add_metric([job], float(value))
            sent_total.add_metric([job], float(snap.counters.get("sent", 0)))
            errors_total.add_metric([job], float(snap.counters.get("failed", 0)))
            for status, count in (snap.counters.get("runs") or {}).items():
                runs_total.add_metric([job, status], float(count))
        yield from gauges.values()
        yield sent_total
        yield errors_total
        yield runs_total
        if self._snapshot.health_code is not None:
            health = GaugeMetricFamily(
                f"{PREFIX}_health_status",
                "Last health-check status: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.",
            )
            health.add_metric([], float(self._snapshot.health_code))
            yield health


def write_textfile(path: Path, snapshot: Snapshot) -> None:
    """Rewrite the textfile atomically, readable by node_exporter (mode 0644)."""
    registry = CollectorRegistry()
    registry.register(SnapshotCollector(snapshot))
    atomic_write(path, generate_latest(registry))

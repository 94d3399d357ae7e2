"""The node_exporter textfile, parsed back with prometheus-client's parser."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from formafriend_scheduler.hooks.prometheus import JobSnapshot, Snapshot, write_textfile

STARTED = datetime(2027, 1, 5, 17, 0, tzinfo=UTC)


def test_the_textfile_has_each_jobs_last_run_and_totals(tmp_path: Path) -> None:
    path = tmp_path / "formafriend.prom"
    snapshot = Snapshot(
        jobs={
            "monthly-invitations": JobSnapshot(
                last={
                    "startedAt": STARTED,
                    "durationMs": 61500,
                    "exitCode": 3,
                    "peakMemoryBytes": 123_000_000,
                    "stats": {
                        "sentInvitations": 97,
                        "failedInvitations": 2,
                        "bouncedInvitations": 1,
                    },
                },
                last_success={"startedAt": datetime(2026, 12, 5, 17, 0, tzinfo=UTC)},
                counters={"sent": 1097, "failed": 13, "runs": {"success": 11, "partial": 1}},
            ),
            "cleanup": JobSnapshot(),
        },
        health_code=1,
    )

    write_textfile(path, snapshot)

    families = {f.name: f for f in text_string_to_metric_families(path.read_text())}

    def value(name: str, **labels: str) -> float:
        family = families[name]
        return next(
            s.value for s in family.samples if all(s.labels.get(k) == v for k, v in labels.items())
        )

    job = {"job": "monthly-invitations"}
    assert value("formafriend_scheduler_last_start_timestamp_seconds", **job) == STARTED.timestamp()
    assert value("formafriend_scheduler_last_duration_seconds", **job) == 61.5
    assert value("formafriend_scheduler_last_exit_code", **job) == 3
    assert value("formafriend_scheduler_last_peak_memory_bytes", **job) == 123_000_000
    assert value("formafriend_scheduler_last_items_sent", **job) == 97
    assert value("formafriend_scheduler_last_items_failed", **job) == 3
    assert families["formafriend_scheduler_items_sent"].type == "counter"
    assert value("formafriend_scheduler_items_sent", **job) == 1097
    assert value("formafriend_scheduler_errors", **job) == 13
    assert value("formafriend_scheduler_runs", job="monthly-invitations", status="partial") == 1
    assert value("formafriend_scheduler_health_status") == 1
    assert "formafriend_scheduler_items_sent_total" in path.read_text()  # counters end in _total
    assert list(tmp_path.iterdir()) == [path]  # written through a temporary file, then renamed


def test_a_write_that_fails_before_the_rename_leaves_the_last_file_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """node_exporter may read at any moment: it sees the old file or the new one."""
    path = tmp_path / "formafriend.prom"
    write_textfile(path, Snapshot(jobs={}, health_code=0))
    before = path.read_text()

    def crash(source: str, target: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "rename", crash)
    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        write_textfile(path, Snapshot(jobs={}, health_code=2))

    assert path.read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["formafriend.prom"]  # no temp file left


def test_node_exporter_can_read_the_file_whatever_the_services_umask(tmp_path: Path) -> None:
    path = tmp_path / "formafriend.prom"
    previous = os.umask(0o027)  # the systemd unit's UMask
    try:
        write_textfile(path, Snapshot(jobs={}, health_code=0))
    finally:
        os.umask(previous)
    assert path.stat().st_mode & 0o777 == 0o644

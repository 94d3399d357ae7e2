"""status and history: what runs now, what ran before."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Annotated, Any

import typer

from formafriend_scheduler.clock import to_utc
from formafriend_scheduler.ids import JOB_TYPES
from formafriend_scheduler.lifecycle.lock import stuck_runs
from formafriend_scheduler.schedule import SCHEDULES
from formafriend_scheduler.store import Store
from formafriend_scheduler.store.records import JOB_STATUSES

from . import output
from .state import handle_errors, state_of

JsonOption = Annotated[bool, typer.Option("--json", help="Print as JSON.")]
_DURATION = re.compile(r"^(\d+)\s*([mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_since(text: str, now: datetime) -> datetime:
    """`90m`, `24h`, `7d`, `2w` ago, or an ISO date/time (UTC when no zone)."""
    match = _DURATION.match(text.strip())
    if match:
        return now - timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    try:
        return to_utc(datetime.fromisoformat(text))
    except ValueError:
        raise typer.BadParameter(
            "use a duration like 24h, 7d, or an ISO date like 2026-11-01"
        ) from None


def status_data(store: Store, now: datetime, timezone: str) -> dict[str, Any]:
    running = store.jobs.running()
    holders = store.locks.holders()
    stuck_ids = {record["_id"] for record in stuck_runs(running, holders, now)}
    live = [record for record in running if record["_id"] not in stuck_ids]
    counts = store.jobs.count_by_status()
    finished = sum(n for status, n in counts.items() if status not in ("running", "skipped"))
    failed = counts["failed"] + counts["abandoned"]
    last_runs = {job: store.jobs.last_of_type(job) for job in JOB_TYPES}
    return {
        "isRunning": bool(live),
        "activeJobs": len(live),
        "activeWorkers": sum(int(record.get("workers") or 0) for record in live),
        "running": [
            {
                "jobId": record["_id"],
                "type": record.get("type"),
                "host": record.get("host"),
                "pid": record.get("pid"),
                "startedAt": record.get("startedAt"),
                "progress": record.get("progress"),
            }
            for record in live
        ],
        "stuckRuns": sorted(str(run_id) for run_id in stuck_ids),
        "cronJobs": [
            {"name": s.job, "schedule": s.cron, "timezone": timezone, "description": s.description}
            for s in SCHEDULES
        ],
        "lastRuns": {job: _summary(record) for job, record in last_runs.items()},
        "metrics": {
            "totalJobsRun": sum(counts.values()),
            "byStatus": counts,
            "errorRate": round(failed / finished, 4) if finished else 0.0,
        },
        "lastHealthCheck": _health_summary(store.health.latest()),
    }


def _summary(record: dict[str, Any] | None) -> dict[str, Any] | None:
    if record is None:
        return None
    return {
        "jobId": record["_id"],
        "status": record.get("status"),
        "startedAt": record.get("startedAt"),
        "finishedAt": record.get("finishedAt"),
        "durationMs": record.get("durationMs"),
        "stats": record.get("stats"),
        "message": record.get("message"),
    }


def _health_summary(record: dict[str, Any] | None) -> dict[str, Any] | None:
    if record is None:
        return None
    return {key: record.get(key) for key in ("checkedAt", "status", "code", "checks")}


@handle_errors
def status(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Show running jobs (who, since when, progress), schedules, the last run of
    each job, totals, and the last health check.

    Example: formafriend-scheduler status --json
    """
    state = state_of(ctx)
    store = state.store()
    try:
        data = status_data(store, state.clock.now(), state.settings.timezone)
    finally:
        store.close()
    if as_json:
        output.print_json(data)
        return
    out = output.stdout
    if data["running"]:
        rows = []
        for run in data["running"]:
            progress = run.get("progress") or {}
            rows.append(
                [
                    run["type"],
                    run["jobId"],
                    f"{run['host']} pid {run['pid']}",
                    output.when(run["startedAt"]),
                    f"{progress.get('done', 0)}/{progress.get('total', 0)}",
                ]
            )
        out.print(output.table("Running now", ["job", "run", "where", "since", "progress"], rows))
    else:
        out.print("No job is running.")
    if data["stuckRuns"]:
        out.print(f"[yellow]Stuck runs (dead owner):[/yellow] {', '.join(data['stuckRuns'])}")
    rows = []
    for job, last in data["lastRuns"].items():
        if last is None:
            rows.append([job, "-", "never", "", ""])
        else:
            duration = last["durationMs"] / 1000 if last.get("durationMs") is not None else None
            rows.append(
                [
                    job,
                    output.styled(str(last["status"])),
                    output.when(last["startedAt"]),
                    output.seconds(duration),
                    last.get("message") or "",
                ]
            )
    out.print(output.table("Last runs", ["job", "status", "started", "duration", "message"], rows))
    schedule_rows = [
        [c["name"], c["schedule"], f"{c['description']} ({c['timezone']})"]
        for c in data["cronJobs"]
    ]
    out.print(output.table("Schedules", ["job", "cron", "meaning"], schedule_rows))
    metrics = data["metrics"]
    out.print(f"Jobs recorded: {metrics['totalJobsRun']}, error rate {metrics['errorRate']:.1%}")
    health = data["lastHealthCheck"]
    if health:
        checked = output.when(health["checkedAt"])
        out.print(f"Last health check: {output.styled(str(health['status']))} at {checked}")
    else:
        out.print("Last health check: none recorded")


@handle_errors
def history(
    ctx: typer.Context,
    job_type: Annotated[
        str | None, typer.Option("--type", help=f"Only this job type: {', '.join(JOB_TYPES)}.")
    ] = None,
    status_filter: Annotated[
        str | None, typer.Option("--status", help=f"Only this status: {', '.join(JOB_STATUSES)}.")
    ] = None,
    since: Annotated[
        str | None, typer.Option(help="Only runs started since: 24h, 7d, or 2026-11-01.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many runs.")] = 20,
    as_json: JsonOption = False,
) -> None:
    """List job runs, newest first.

    Example: formafriend-scheduler history --type cleanup --since 7d
    """
    state = state_of(ctx)
    if job_type is not None and job_type not in JOB_TYPES:
        raise typer.BadParameter(f"must be one of {', '.join(JOB_TYPES)}", param_hint="--type")
    if status_filter is not None and status_filter not in JOB_STATUSES:
        raise typer.BadParameter(f"must be one of {', '.join(JOB_STATUSES)}", param_hint="--status")
    since_at = parse_since(since, state.clock.now()) if since else None
    store = state.store()
    try:
        records = store.jobs.find(
            job_type=job_type, status=status_filter, since=since_at, limit=limit
        )
    finally:
        store.close()
    if as_json:
        output.print_json(records)
        return
    rows = []
    for record in records:
        stats = record.get("stats") or {}
        items = ", ".join(f"{k}={v}" for k, v in stats.items() if v)
        duration = record["durationMs"] / 1000 if record.get("durationMs") is not None else None
        rows.append(
            [
                output.when(record.get("startedAt")),
                record.get("type"),
                output.styled(str(record.get("status"))),
                output.seconds(duration),
                items or "-",
                record["_id"],
            ]
        )
    if not rows:
        output.stdout.print("No job runs match.")
        return
    output.stdout.print(
        output.table("", ["started", "job", "status", "duration", "stats", "run"], rows)
    )

"""metrics: per job type over a window (the seed's getDetailedMetrics)."""

from __future__ import annotations

from typing import Annotated

import typer

from formafriend_scheduler.metrics_summary import summarise

from . import output
from .observe import parse_since
from .state import handle_errors, state_of

MB = 1024 * 1024


@handle_errors
def metrics(
    ctx: typer.Context,
    since: Annotated[str, typer.Option(help="Window: 72h, 7d, or 2026-11-01.")] = "72h",
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """Runs, success rate, duration p50/p95/max, items per second, peak memory and
    error rate per job type, from the per-run metrics (kept
    SCHEDULER_METRICS_RETENTION_HOURS).

    Example: formafriend-scheduler metrics --since 24h
    """
    state = state_of(ctx)
    start = parse_since(since, state.clock.now())
    store = state.store()
    try:
        summaries = summarise(store.metrics.since(start))
    finally:
        store.close()
    if as_json:
        output.print_json({"since": start, "jobs": [m.as_dict() for m in summaries]})
        return
    if not summaries:
        output.stdout.print(f"No run recorded since {output.when(start)}.")
        return
    rows = [
        [
            m.job,
            m.runs,
            f"{m.success_rate:.0%}",
            f"{output.seconds(m.percentile(0.5))} / {output.seconds(m.percentile(0.95))} / "
            f"{output.seconds(max(m.durations))}",
            f"{m.items_per_second:.1f}",
            f"{m.peak_memory_bytes / MB:.0f} MB",
            f"{m.error_rate:.1%}",
            m.sparkline(),
        ]
        for m in summaries
    ]
    columns = [
        "job",
        "runs",
        "success",
        "duration p50/p95/max",
        "items/s",
        "peak memory",
        "errors",
        "recent durations",
    ]
    output.stdout.print(output.table(f"Since {output.when(start)}", columns, rows))

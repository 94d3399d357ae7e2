"""Running a job from the command line: progress bar, summary, exit code."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from formafriend_scheduler.lifecycle.context import ProgressCallback
from formafriend_scheduler.lifecycle.runner import Job, Runner, RunResult
from formafriend_scheduler.reporting import RunReporter

from . import output
from .state import AppState


@contextmanager
def progress_bar(enabled: bool, label: str) -> Iterator[ProgressCallback | None]:
    if not enabled:
        yield None
        return
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=output.stderr,
        transient=True,
    ) as progress:
        task = progress.add_task(label, total=None)

        def update(done: int, total: int, phase: str) -> None:
            description = f"{label}: {phase}" if phase else label
            progress.update(
                task, completed=done, total=max(total, done) or None, description=description
            )

        yield update


def run_job(state: AppState, job: Job, options: dict[str, Any], as_json: bool) -> None:
    """Run `job` through the shared lifecycle, report it, exit with its code."""
    settings = state.settings
    store = state.store()
    events = state.events()
    show_progress = output.on_terminal() and not as_json
    try:
        with progress_bar(show_progress, job.job_type) as on_progress:
            runner = Runner(
                settings,
                store,
                state.clock,
                events,
                redactor=state.redactor,
                on_progress=on_progress,
                reporter=RunReporter(settings, store, state.clock, events),
            )
            result = runner.run(job, options)
    finally:
        store.close()
    report(state, result, as_json)
    raise typer.Exit(result.exit_code)


def report(state: AppState, result: RunResult, as_json: bool) -> None:
    if as_json:
        output.print_json(result.as_dict())
        return
    headline = (
        f"{result.job_type} {output.styled(result.status)} in "
        f"{output.seconds(result.duration_seconds)} ({result.run_id})"
    )
    if state.quiet(as_json):
        if result.exit_code != 0:  # cron mails this line; silence means success
            output.stderr.print(
                f"{result.job_type} {result.status} (exit {result.exit_code}): {result.message}",
                markup=False,
            )
        return
    output.stdout.print(headline)
    if result.message:
        output.stdout.print(f"  {result.message}", markup=False)
    if result.stats:
        rows = [[name, value] for name, value in result.stats.items()]
        output.stdout.print(output.table("", ["stat", "value"], rows))

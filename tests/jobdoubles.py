"""A scripted job for lifecycle tests: it works in steps, asking before each
one whether it should stop, and runs a test-supplied action at each step."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from formafriend_scheduler.lifecycle.context import JobContext, JobOutcome

Action = Callable[[JobContext, int], None]


@dataclass
class SteppedJob:
    steps: int = 3
    action: Action | None = None
    outcome: JobOutcome = field(default_factory=JobOutcome)
    job_type: str = "test-job"
    done: int = 0

    def run(self, ctx: JobContext) -> JobOutcome:
        for step in range(self.steps):
            if ctx.should_stop():
                break
            if self.action is not None:
                self.action(ctx, step)
            self.done += 1
            ctx.count("steps")
            ctx.progress(self.done, self.steps)
        return self.outcome

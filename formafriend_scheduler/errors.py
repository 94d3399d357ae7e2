"""The small exception tree of the scheduler and the exit-code table.

Only `cli` turns these into process exit codes; everything below raises.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Exit codes of job commands (documented in the README and in --help)."""

    OK = 0  # success, or nothing to do
    FAILED = 1  # the job failed
    USAGE = 2  # usage or configuration error
    PARTIAL = 3  # the job finished but some items failed
    TEMPFAIL = 75  # locked by another live run, or MongoDB unreachable: try again later
    SIGINT = 130
    SIGTERM = 143


class HealthCode(IntEnum):
    """Exit codes of `health-check`: the monitoring-plugin convention."""

    OK = 0
    WARNING = 1
    CRITICAL = 2
    UNKNOWN = 3


class SchedulerError(Exception):
    """Base of every error the scheduler raises on purpose."""

    exit_code: ExitCode = ExitCode.FAILED
    hint: str = ""


class ProblemList(SchedulerError):
    """Every problem found at once, one per line under a title; exit 2."""

    exit_code = ExitCode.USAGE
    title = "problems"

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(f"{self.title}:\n" + "\n".join(f"  - {problem}" for problem in problems))


class ConfigError(ProblemList):
    """The configuration is invalid; `problems` names each bad variable."""

    title = "invalid configuration"
    hint = "fix the variables above (environment or .env file); `config show` lists them all"


class DatabaseNotEmpty(SchedulerError):
    """Sample data would be mixed into a database that already holds users."""

    exit_code = ExitCode.USAGE
    hint = "pass --force to add to it anyway, or point MONGODB_URI at another database"

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        if hint is not None:
            self.hint = hint


class NotFound(SchedulerError):
    """What a command was asked to show is not in the database."""

    exit_code = ExitCode.USAGE
    hint = "check the user id (24 hex characters) and the contact's e-mail"


class TemplateProblems(ProblemList):
    """An override template fails to render or lacks a required link."""

    title = "e-mail templates"
    hint = "fix the files named above (SCHEDULER_EMAIL_TEMPLATES_DIR), then `config check`"


class DatabaseUnavailable(SchedulerError):
    """MongoDB could not be reached (or kept failing) after the retries."""

    exit_code = ExitCode.TEMPFAIL
    hint = "check MONGODB_URI and that the server is up; the next run will retry"


class StoreError(SchedulerError):
    """A database operation failed for a reason retrying does not fix."""


class JobLocked(SchedulerError):
    """Another live run holds the job's lease."""

    exit_code = ExitCode.TEMPFAIL
    hint = "another run is working on this job; it will be retried at the next schedule"


class ClockSkew(SchedulerError):
    """The local clock and the MongoDB server's clock disagree too much."""

    exit_code = ExitCode.FAILED
    hint = "synchronise the clocks (NTP) or raise SCHEDULER_MAX_CLOCK_SKEW_SECONDS"


class LeaseLost(SchedulerError):
    """The run's lease was taken over by another run; it must stop writing."""

    exit_code = ExitCode.TEMPFAIL
    hint = "another run took over the job after this run's lease ran out"

"""Per-invocation state on the Typer context, and the one place where
errors become exit codes."""

from __future__ import annotations

import functools
import logging
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import ParamSpec, TypeVar

import typer

from formafriend_scheduler.clock import Clock, SystemClock
from formafriend_scheduler.config import Settings, load_settings
from formafriend_scheduler.errors import ExitCode, JobLocked, SchedulerError
from formafriend_scheduler.hooks.events import EventBus
from formafriend_scheduler.hooks.setup import event_bus_for
from formafriend_scheduler.logs import LogFormat, configure_logging
from formafriend_scheduler.redact import Redactor, one_line
from formafriend_scheduler.store import Store, connect

from . import output

log = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")


@dataclass
class AppState:
    log_level: str | None = None
    log_format: LogFormat = "auto"
    verbose: bool = False
    debug: bool = False
    env_file: Path | None = None
    clock: Clock = field(default_factory=SystemClock)
    _settings: Settings | None = None
    _redactor: Redactor = field(default_factory=Redactor)
    _stores: list[Store] = field(default_factory=list)

    def configure_logging(self) -> None:
        configure_logging(
            level="DEBUG" if self.debug else self.log_level,
            log_format=self.log_format,
            verbose=self.verbose,
            redactor=self._redactor,
        )

    @property
    def settings(self) -> Settings:
        """Loaded on first use, so --help and --version never need a valid setup."""
        if self._settings is None:
            return self.use_settings(load_settings(self.env_file))
        return self._settings

    def use_settings(self, settings: Settings) -> Settings:
        """Run with these settings (the demo brings its own)."""
        self._settings = settings
        self._redactor = Redactor(settings.secret_values())
        self.configure_logging()  # now the known secrets are masked too
        return settings

    @property
    def redactor(self) -> Redactor:
        return self._redactor

    def store(self, *, retry_attempts: int | None = None) -> Store:
        store = connect(self.settings, retry_attempts=retry_attempts)
        self._stores.append(store)
        return store

    def close_stores(self) -> None:
        """When the command is done: a closed client lets the process exit
        without waiting on its monitor threads (store/client.py)."""
        for store in self._stores:
            store.close()
        self._stores.clear()

    def events(self) -> EventBus:
        """The log sink plus every sink the configuration names (webhook, command,
        alert e-mail, pings)."""
        return event_bus_for(self.settings, self.clock)

    def quiet(self, as_json: bool) -> bool:
        """Under cron a successful run prints nothing (cron mails any output)."""
        return not as_json and not self.verbose and not output.on_terminal()


def state_of(ctx: typer.Context) -> AppState:
    obj = ctx.find_root().obj
    if not isinstance(obj, AppState):
        obj = AppState()
        ctx.find_root().obj = obj
    return obj


def handle_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Turn SchedulerErrors into one readable line, a hint, and their exit code.

    Commands take `ctx: typer.Context`, which Typer passes by keyword.
    """

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        ctx = kwargs.get("ctx")
        state = state_of(ctx) if isinstance(ctx, typer.Context) else AppState()
        try:
            return command(*args, **kwargs)
        except JobLocked as locked:
            # Expected whenever runs overlap or several hosts share a schedule:
            # the live run reports for itself, so this is no cause for a cron
            # mail. An info line: shown on a terminal or with --log-level info.
            log.info("%s; exit 75, the next scheduled run tries again", state.redactor(str(locked)))
            raise typer.Exit(locked.exit_code) from None
        except SchedulerError as error:
            _report(state, str(error), error.hint, error)
            raise typer.Exit(error.exit_code) from None
        except (typer.Exit, typer.Abort, typer.TyperException):
            raise  # Typer's own exits and usage errors (exit 2) keep their meaning
        except Exception as error:
            message = f"unexpected {type(error).__name__}: {error}"
            _report(state, message, "re-run with --debug for a traceback", error)
            raise typer.Exit(ExitCode.FAILED) from None

    return wrapper


def _report(state: AppState, message: str, hint: str, error: BaseException) -> None:
    redact = state.redactor
    if state.debug:
        output.stderr.print(redact("".join(traceback.format_exception(error))), markup=False)
    lines = redact(message).splitlines() or [""]
    output.stderr.print(f"error: {one_line(lines[0], 500)}", markup=False)
    for line in lines[1:]:
        output.stderr.print(line, markup=False)
    if hint:
        output.stderr.print(f"hint: {hint}", markup=False, style="dim")

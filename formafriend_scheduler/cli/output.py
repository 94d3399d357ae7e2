"""Output that fits where it runs: rich tables on a terminal, JSON for scripts."""

from __future__ import annotations

import json
import sys
from datetime import datetime, timedelta
from typing import Any

from rich.console import Console
from rich.table import Table

# Off a terminal (cron mail, a pipe) rich would assume 80 columns and squeeze
# tables; a wider page keeps them readable.
stdout = Console(highlight=False, soft_wrap=False, width=None if sys.stdout.isatty() else 160)
stderr = Console(stderr=True, highlight=False, soft_wrap=True)


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    return str(value)  # ObjectId and other BSON scalars


def print_json(data: Any) -> None:
    # Plain print, not rich: scripts must get exactly one JSON document.
    sys.stdout.write(json.dumps(data, default=_default, ensure_ascii=False, indent=2) + "\n")
    sys.stdout.flush()


def print_line(text: str) -> None:
    """One plain line on stdout, never wrapped or styled (monitoring plugins
    and log scrapers read it as is)."""
    sys.stdout.write(" ".join(text.split()) + "\n")
    sys.stdout.flush()


def on_terminal() -> bool:
    return sys.stdout.isatty()


def table(title: str, columns: list[str], rows: list[list[Any]]) -> Table:
    result = Table(title=title, title_justify="left", show_edge=False, header_style="bold")
    for column in columns:
        result.add_column(column)
    for row in rows:
        result.add_row(*("" if cell is None else str(cell) for cell in row))
    return result


def when(moment: Any) -> str:
    if isinstance(moment, datetime):
        return moment.strftime("%Y-%m-%d %H:%M:%S") + "Z"
    return "-" if moment is None else str(moment)


def seconds(value: float | int | None) -> str:
    if value is None:
        return "-"
    value = float(value)
    if value < 60:
        return f"{value:.1f}s"
    minutes, secs = divmod(int(value), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


STATUS_STYLE = {
    "success": "green",
    "running": "cyan",
    "partial": "yellow",
    "skipped": "dim",
    "interrupted": "yellow",
    "abandoned": "red",
    "failed": "red",
    "OK": "green",
    "WARNING": "yellow",
    "CRITICAL": "red",
    "UNKNOWN": "magenta",
}


def styled(status: str) -> str:
    style = STATUS_STYLE.get(status)
    return f"[{style}]{status}[/{style}]" if style else status

"""Alert state in a local file, for the alerts health-check sends while
MongoDB (where the state normally lives) is unreachable.

Without it, a database outage would page the operator every five minutes and
never say when it ended. The file has the same three operations as
`scheduler_alerts` (store.alerts.AlertStateRepository), so the same
AlertTracker drives both.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from pathlib import Path
from typing import Any

from formafriend_scheduler.files import atomic_write

log = logging.getLogger(__name__)
FILE_NAME = "alerts-offline.json"


class FileAlertState:
    def __init__(self, directory: Path) -> None:
        self.path = directory / FILE_NAME

    def fire(self, alert: dict[str, Any], now: datetime, resend_before: datetime) -> bool:
        """Same rule as the MongoDB state: send when new, resolved since,
        changed severity, or last sent before `resend_before`."""
        state = self._load()
        previous = state.get(alert["key"]) or {}
        last_sent = _moment(previous.get("lastSentAt"))
        send = (
            last_sent is None
            or previous.get("severity") != alert["severity"]
            or last_sent <= resend_before
        )
        sent_at = now if send or last_sent is None else last_sent
        state[alert["key"]] = {**alert, "lastSentAt": sent_at.isoformat()}
        self._save(state)
        return send

    def active(self, scopes: list[str]) -> list[dict[str, Any]]:
        return [
            {"_id": key, **doc} for key, doc in self._load().items() if doc.get("scope") in scopes
        ]

    def resolve(self, keys: list[str], now: datetime) -> int:
        del now  # a resolved alert simply leaves the file
        state = self._load()
        gone = [key for key in keys if state.pop(key, None) is not None]
        if gone:
            self._save(state)
        return len(gone)

    def _load(self) -> dict[str, dict[str, Any]]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as error:
            log.warning("ignoring unreadable alert state %s: %s", self.path, error)
            return {}
        return data if isinstance(data, dict) else {}

    def _save(self, state: dict[str, dict[str, Any]]) -> None:
        data = json.dumps(state, indent=1, sort_keys=True).encode("utf-8")
        atomic_write(self.path, data, mode=0o600)


def _moment(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None

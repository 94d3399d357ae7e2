"""Keep secrets out of every log line, job record and error message."""

from __future__ import annotations

import re
from collections.abc import Iterable

# user:password@ in any URL (mongodb://, smtp://, https://...), even one we were
# never told about, such as a URI quoted inside a driver's error message.
_URL_PASSWORD = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s]*:)[^@\s]+@")


class Redactor:
    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # Longest first, so a secret that contains another is masked whole.
        self._secrets = sorted({s for s in secrets if len(s) >= 3}, key=len, reverse=True)

    @property
    def secrets(self) -> tuple[str, ...]:
        return tuple(self._secrets)

    def __call__(self, text: str) -> str:
        text = _URL_PASSWORD.sub(r"\g<head>***@", text)
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text


def one_line(text: str, limit: int = 300) -> str:
    """Collapse a message to one line of at most `limit` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"

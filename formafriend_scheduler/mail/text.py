"""Untrusted text (names, custom messages) made safe for headers and bodies."""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime

from formafriend_scheduler.eligibility import FRENCH_MONTHS

_SPACES = re.compile(r"\s+")
# Format characters that text needs: the zero-width joiner (emoji sequences
# such as a family or a rainbow flag) and non-joiner (Persian, Indic scripts).
# Every other control or format character goes, bidi overrides included.
_JOINERS = frozenset("\u200c\u200d")
_TRIMMED = " \t\n\r\u200c\u200d"


def _dropped(ch: str) -> bool:
    return unicodedata.category(ch)[0] == "C" and ch not in _JOINERS


def header_text(value: object, limit: int = 100) -> str:
    """One line with no control characters (no CR/LF: no header injection)."""
    text = "" if value is None else str(value)
    # isprintable() is False for every control character (Unicode category C)
    # and every space but " ": a printable text needs no scan, character by
    # character (most names; the scan was a fifth of composing a message).
    if not text.isprintable():
        text = "".join(" " if _dropped(ch) else ch for ch in text)
    # Joiners join what is between them: at either end they only hide that
    # a name is empty (its "Un ami" fallback must still apply).
    text = _SPACES.sub(" ", text).strip(_TRIMMED)
    return text[:limit].rstrip(_TRIMMED)


def body_text(value: object, limit: int = 2000) -> str:
    """Keeps line breaks, drops other control characters."""
    text = "" if value is None else str(value)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.replace("\n", "").replace("\t", "").isprintable():
        text = "".join(ch for ch in text if ch in "\n\t" or not _dropped(ch))
    return text.strip(_TRIMMED)[:limit]


def french_date(moment: datetime) -> str:
    """`1er janvier 2027`, `4 janvier 2027`."""
    day = "1er" if moment.day == 1 else str(moment.day)
    return f"{day} {FRENCH_MONTHS[moment.month - 1]} {moment.year}"

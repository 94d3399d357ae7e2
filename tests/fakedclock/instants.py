"""The instants at which CI runs the suite again under a faked clock
(scripts/test-faked-clock), in the schedule's timezone (Europe/Paris): the
moments that break date-dependent code or tests. Each is its next occurrence
after today, so the pass covers the dates the scheduler is about to meet (as
written, in December 2026: New Year's Eve and 2027's two DST change days).

    python -m tests.fakedclock.instants   # "<epoch seconds> <local time> <why>" per line
"""

from __future__ import annotations

import calendar
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

PARIS = ZoneInfo("Europe/Paris")


def last_sunday(year: int, month: int) -> int:
    last_day = calendar.monthrange(year, month)[1]
    return max(
        d for d in range(last_day - 6, last_day + 1) if calendar.weekday(year, month, d) == 6
    )


def instants(now: datetime) -> list[tuple[datetime, str]]:
    """(instant in Paris, why), each the first one after `now`.

    A local time that does not exist (02:30 on the spring-forward Sunday) is
    resolved as zoneinfo does, with the offset before the change (01:30 UTC,
    03:30 summer time); one that happens twice (02:30 on the fall-back Sunday)
    is its first occurrence (00:30 UTC, still summer time).
    """
    local = now.astimezone(PARIS)
    months = [divmod(local.year * 12 + local.month - 1 + k, 12) for k in range(14)]
    months = [(year, index + 1) for year, index in months]
    years = (local.year, local.year + 1)

    def first_after(*candidates: tuple[int, int, int, int, int]) -> datetime:
        moments = [datetime(*c, tzinfo=PARIS) for c in candidates]
        return min(m for m in moments if m > now)

    def month_end(year: int, month: int) -> int:
        return calendar.monthrange(year, month)[1]

    return [
        (first_after(*((y, m, 1, 0, 30) for y, m in months)), "the 1st of a month, 00:30"),
        (first_after(*((y, m, 1, 17, 59) for y, m in months)), "the 1st, 17:59 (before 18:00)"),
        (
            first_after(*((y, m, month_end(y, m), 23, 30) for y, m in months)),
            "the last day of a month, 23:30",
        ),
        (
            first_after(*((y, 3, last_sunday(y, 3), 2, 30) for y in years)),
            "spring forward: 02:30 does not exist",
        ),
        (
            first_after(*((y, 10, last_sunday(y, 10), 2, 30) for y in years)),
            "fall back: 02:30 happens twice",
        ),
    ]


def main() -> None:
    for moment, why in instants(datetime.now(UTC)):
        print(f"{int(moment.timestamp())} {moment.astimezone(PARIS).isoformat()} {why}")


if __name__ == "__main__":
    main()

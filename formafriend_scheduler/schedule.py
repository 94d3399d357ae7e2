"""When each job is meant to run: the one schedule that crontab.example, the
systemd timers and `status` all show (a test keeps them in step)."""

from __future__ import annotations

from dataclasses import dataclass

SCHEDULE_TIMEZONE = "Europe/Paris"  # CRON_TZ in crontab.example, the timers' zone


@dataclass(frozen=True)
class JobSchedule:
    job: str
    cron: str
    on_calendar: str  # systemd.time(7), in SCHEDULE_TIMEZONE
    description: str


SCHEDULES: tuple[JobSchedule, ...] = (
    JobSchedule(
        "monthly-invitations",
        "0 * * * *",
        "*-*-* *:00:00",
        "hourly: each user at their own send day, time and timezone (default: the 5th at 18:00)",
    ),
    JobSchedule(
        "reminders",
        "0 * * * *",
        "*-*-* *:00:00",
        "hourly: J+3 and J+7 reminders within the sender's quiet hours",
    ),
    JobSchedule("cleanup", "0 2 * * *", "*-*-* 02:00:00", "daily at 02:00"),
    JobSchedule("health-check", "*/5 * * * *", "*-*-* *:0/5:00", "every 5 minutes"),
)

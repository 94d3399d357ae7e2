"""When each job is meant to run: the schedule the crontab and systemd timers
shipped with the project use, shown by `status`."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class JobSchedule:
    job: str
    cron: str
    description: str


SCHEDULES: tuple[JobSchedule, ...] = (
    JobSchedule(
        "monthly-invitations",
        "0 * * * *",
        "hourly: each user at their own send day, time and timezone (default: the 5th at 18:00)",
    ),
    JobSchedule(
        "reminders", "0 * * * *", "hourly: J+3 and J+7 reminders within the sender's quiet hours"
    ),
    JobSchedule("cleanup", "0 2 * * *", "daily at 02:00"),
    JobSchedule("health-check", "*/5 * * * *", "every 5 minutes"),
)

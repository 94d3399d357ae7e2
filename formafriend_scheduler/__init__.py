"""Form-a-Friend v2 scheduler: monthly invitations, reminders, cleanup and
health checks as stateless command-line runs for cron or systemd timers."""

__version__ = "0.1.0"

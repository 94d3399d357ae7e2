"""Where events go: log lines now, webhooks, pings and metrics files later.

Every event of a run passes through one `EventBus.emit` call, so a new sink
plugs in without touching the jobs.
"""

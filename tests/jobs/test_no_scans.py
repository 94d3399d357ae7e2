"""Every query of every job is served by an index: a steady-state day of runs
reads none of the app's collections whole. Counted by PostgreSQL itself on
the FerretDB v2 + DocumentDB server (FAF_TEST_SERVER=documentdb), the only
server here with real indexes and a count of the scans of each table."""

from __future__ import annotations

import os
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from typer.testing import CliRunner

from formafriend_scheduler.cli.app import app
from formafriend_scheduler.cli.state import AppState
from formafriend_scheduler.clock import FrozenClock
from formafriend_scheduler.seed import SeedPlan, seed
from formafriend_scheduler.store import connect
from tests.appdata import create_indexes, indexes_of
from tests.jobs.monthly_helpers import JANUARY, SEND_MOMENT, monthly_settings
from tests.pgstats import ScanCounters
from tests.smtpserver import SmtpServer

pytestmark = pytest.mark.skipif(
    not os.environ.get("FAF_DOCUMENTDB_KIT"),
    reason="counts PostgreSQL's scans: run with FAF_TEST_SERVER=documentdb",
)

# Whole-collection reads allowed in a day of runs: none is needed; a planner
# may still pick one on a table it believes tiny.
SCANS_ALLOWED = 2


@pytest.mark.real_server_only
def test_a_steady_state_day_of_runs_reads_no_app_collection_whole(
    mongodb_uri: str, smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = monthly_settings(mongodb_uri, smtp_server.url)
    store = connect(settings)
    for collection in ("users", "contacts", "invitations"):
        create_indexes(store.db, collection, indexes_of(collection))
    store.indexes.ensure()
    # Enough documents that a planner weighs an index against a scan for real.
    seed(
        store,
        SeedPlan(users=120, contacts_per_user=20, max_send_day=1),
        SEND_MOMENT - timedelta(days=40),
    )
    monkeypatch.setenv("MONGODB_URI", mongodb_uri)
    monkeypatch.setenv("SMTP_URL", smtp_server.url)
    monkeypatch.setenv("SCHEDULER_REMINDER_WINDOW_START", "00:00")  # senders in seven zones
    monkeypatch.setenv("SCHEDULER_REMINDER_WINDOW_END", "23:59")
    cli = CliRunner()

    def run(at: FrozenClock, *command: str) -> None:
        result = cli.invoke(app, [*command, "--json"], obj=AppState(clock=at))
        assert result.exit_code in (0, 1), (command, result.stdout, result.stderr)

    run(FrozenClock(SEND_MOMENT), "monthly-invitations", "--month", str(JANUARY), "--workers", "2")
    assert store.db["invitations"].count_documents({"status": "sent"}) > 2000

    counters = ScanCounters(urlsplit(mongodb_uri).path.strip("/"))
    counters.start()
    # The steady state: the hourly run with everyone done, first reminders
    # due, the nightly cleanup, and the operator's and the monitor's reads.
    later = FrozenClock(SEND_MOMENT + timedelta(days=4))
    run(later, "monthly-invitations")
    run(later, "reminders", "--workers", "2")
    run(later, "cleanup")
    for command in (
        ["health-check"],
        ["status"],
        ["history", "--limit", "20"],
        ["metrics", "--since", "7d"],
    ):
        run(later, *command)
    scans = counters.since_start()

    assert store.db["invitations"].count_documents({"reminders.type": "first"}) > 0
    for collection, (sequential, by_index) in scans.items():
        assert sequential <= SCANS_ALLOWED, f"{collection}: {sequential} sequential scans"
        assert by_index > 0, f"{collection}: never read by an index"

"""Fixtures of the fault-injection suite: a mailing on the real server, paced
by the mail server, and a server the tests can stop and start again."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pymongo
import pytest

from formafriend_scheduler.store import connect
from tests.conftest import database_uri, make_settings
from tests.faults.harness import Mailing
from tests.realserver import RestartableServer, documentdb_kit
from tests.smtpserver import SmtpServer

# Each message takes the mail server this long to accept: a run of 120
# messages lasts a few seconds, so faults land mid-run.
PACE_SECONDS = 0.02


def mailing_on(server_uri: str, smtp: SmtpServer, logs: Path) -> Iterator[Mailing]:
    database = f"faf_fault_{uuid.uuid4().hex[:12]}"
    uri = database_uri(server_uri, database)
    smtp.recorder.reply_delay = PACE_SECONDS
    mailing = Mailing(uri, connect(make_settings(uri)), smtp, logs)
    yield mailing
    mailing.stop_every_run()
    with pymongo.MongoClient(server_uri, serverSelectionTimeoutMS=30_000) as client:
        client.drop_database(database)


@pytest.fixture
def mailing(real_server_uri: str, smtp_server: SmtpServer, tmp_path: Path) -> Iterator[Mailing]:
    yield from mailing_on(real_server_uri, smtp_server, tmp_path)


@pytest.fixture
def restartable(tmp_path: Path, real_server_uri: str) -> Iterator[RestartableServer]:
    """The embedded FerretDB v1 (a process of this test's own), or the DocumentDB
    kit's FerretDB v2; a server given by FAF_TEST_MONGODB_URI cannot be restarted."""
    kit = documentdb_kit()
    if kit is None and os.environ.get("FAF_TEST_MONGODB_URI"):
        pytest.skip("a server given by FAF_TEST_MONGODB_URI cannot be stopped and restarted here")
    data = tmp_path / "db"
    data.mkdir()
    server = RestartableServer(data, kit)
    server.start()
    try:
        yield server
    finally:
        if kit is not None:
            server.start()  # the rest of the suite runs on it
        else:
            server.stop()


@pytest.fixture
def outage_mailing(
    restartable: RestartableServer, smtp_server: SmtpServer, tmp_path: Path
) -> Iterator[Mailing]:
    for mailing in mailing_on(restartable.uri, smtp_server, tmp_path):
        smtp_server.recorder.reply_delay = 0.05  # slower: the outage lands mid-run on any server
        yield mailing

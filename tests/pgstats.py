"""PostgreSQL's own count of the scans of each collection's table, on the
FerretDB v2 + DocumentDB server (FAF_TEST_SERVER=documentdb): where a server
has no `explain` for every command, this shows whether a run read a whole
collection."""

from __future__ import annotations

import os
import subprocess
import time

DOCUMENTDB_WORK = os.environ.get("W", "/tmp/ddb")


class ScanCounters:
    """PostgreSQL's sequential and index scans of the tables behind the app's
    collections (`pg_stat_user_tables`), on the DocumentDB server only."""

    COLLECTIONS = ("users", "contacts", "invitations")

    def __init__(self, database: str) -> None:
        self._database = database
        self._before: dict[str, tuple[int, int]] = {}

    def _read(self) -> dict[str, tuple[int, int]]:
        work = DOCUMENTDB_WORK
        query = (
            "select c.collection_name, s.seq_scan, coalesce(s.idx_scan, 0) "
            "from documentdb_api_catalog.collections c join pg_stat_user_tables s "
            "on s.relname = 'documents_' || c.collection_id "
            f"where c.database_name = '{self._database}'"
        )
        out = subprocess.run(
            ["runuser", "-u", "postgres", "--", "psql", "-h", f"{work}/run", "-p",
             os.environ.get("PGPORT", "55432"), "-d", "postgres", "-At", "-F", " ", "-c", query],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        counts = {}
        for line in out.splitlines():
            name, seq, idx = line.split()
            counts[name] = (int(seq), int(idx))
        return counts

    def start(self) -> None:
        time.sleep(0.6)  # the statistics collector reports with a delay (500 ms)
        self._before = self._read()

    def since_start(self) -> dict[str, tuple[int, int]]:
        time.sleep(0.6)
        after = self._read()
        return {
            name: (
                after.get(name, (0, 0))[0] - self._before.get(name, (0, 0))[0],
                after.get(name, (0, 0))[1] - self._before.get(name, (0, 0))[1],
            )
            for name in self.COLLECTIONS
        }

"""PostgreSQL's own count of the scans of each collection's table, on the
FerretDB v2 + DocumentDB server (FAF_TEST_SERVER=documentdb): where a server
has no `explain` for every command, this shows whether a run read a whole
collection."""

from __future__ import annotations

import os
import subprocess
import time

DOCUMENTDB_WORK = os.environ.get("W", "/tmp/ddb")


class CountersReset(RuntimeError):
    """PostgreSQL restarted a crashed backend during the count (the kit's
    known segfault in rum.so) and its crash recovery reset every counter."""


class ScanCounters:
    """PostgreSQL's sequential and index scans of the tables behind the app's
    collections (`pg_stat_user_tables`), on the DocumentDB server only."""

    COLLECTIONS = ("users", "contacts", "invitations")

    def __init__(self, database: str) -> None:
        self._database = database
        self._before: dict[str, tuple[int, int]] = {}
        self._crashes_before = 0

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

    def _crashes(self) -> int:
        log = os.path.join(DOCUMENTDB_WORK, "run", "postgresql.log")
        try:
            with open(log, encoding="utf-8", errors="replace") as lines:
                return sum("was terminated by signal" in line for line in lines)
        except OSError:
            return 0

    def start(self) -> None:
        time.sleep(0.6)  # the statistics collector reports with a delay (500 ms)
        self._crashes_before = self._crashes()
        self._before = self._read()

    def since_start(self) -> dict[str, tuple[int, int]]:
        """Scans since start(); CountersReset when PostgreSQL crashed meanwhile."""
        time.sleep(0.6)
        after = self._read()
        went_back = any(
            now < then
            for name in self.COLLECTIONS
            for now, then in zip(
                after.get(name, (0, 0)), self._before.get(name, (0, 0)), strict=True
            )
        )
        if self._crashes() != self._crashes_before or went_back:
            raise CountersReset("PostgreSQL crashed during the count and reset its counters")
        return {
            name: (
                after.get(name, (0, 0))[0] - self._before.get(name, (0, 0))[0],
                after.get(name, (0, 0))[1] - self._before.get(name, (0, 0))[1],
            )
            for name in self.COLLECTIONS
        }

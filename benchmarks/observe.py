"""Benchmark: what runs every hour or at an operator's prompt, on a large
deployment: an hourly monthly-invitations run with nobody due, and `status`,
`history --limit 20`, `metrics --since 7d` and `health-check` over a long
job history.

    .venv/bin/python benchmarks/observe.py --server documentdb --users 50000 --records 10000

Seeds --users users (the app's shape and indexes), each with the 1st as send
day, whose cycle of the current month already ran: the steady state of every
hourly run after the first days of a month, each active user read and found
done, whatever the date the benchmark runs on; then --records job
records, metrics and health checks spread over the last 30 days, each a copy
of one a real run wrote. Times each command end to end as a subprocess, as
cron or an operator runs it (Python's start included), the best of three, and
counts its database round trips (benchmarks/probe).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pymongo
from bson import ObjectId

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import (
    Run,
    add_server_options,
    benchmark_server,
    create_indexes,
    database_uri,
    header,
    indexes_of,
    run_scheduler,
    scans,
    scheduler_env,
    sink_dump_dir,
    smtp_sink,
    started_scan_counters,
)
from formafriend_scheduler.config import load_settings
from formafriend_scheduler.eligibility import Month
from formafriend_scheduler.seed import SeedPlan, seed
from formafriend_scheduler.store import connect
from formafriend_scheduler.store.cycles import cycle_key

TARGET_HOURLY_SECONDS = 2.0
TARGET_COMMAND_SECONDS = 1.0
HISTORY_DAYS = 30
COMMANDS = (
    ("status", ["status"]),
    ("history --limit 20", ["history", "--limit", "20"]),
    ("metrics --since 7d", ["metrics", "--since", "7d"]),
    ("health-check", ["health-check"]),
)


def mark_cycles_done(db: Any, month: Month, now: datetime) -> int:
    """Every user's cycle of `month` already ran, as the scheduler records it."""
    done = 0
    batch: list[dict[str, Any]] = []
    for user in db["users"].find({}, {"_id": 1}):
        key = cycle_key(user["_id"], str(month))
        batch.append({"_id": key, "userId": user["_id"], "month": str(month),
                      "runId": "benchmark", "completedAt": now})  # fmt: skip
        if len(batch) == 1000:
            done += len(db["scheduler_cycles"].insert_many(batch).inserted_ids)
            batch = []
    if batch:
        done += len(db["scheduler_cycles"].insert_many(batch).inserted_ids)
    return done


def copies(template: dict[str, Any], count: int, field: str, now: datetime,
           vary: Callable[[dict[str, Any], int], None]) -> list[dict[str, Any]]:  # fmt: skip
    """`count` copies of a document a real run wrote, its timestamp `field`
    spread over the last HISTORY_DAYS days."""
    step = timedelta(days=HISTORY_DAYS) / max(1, count)
    docs = []
    for index in range(count):
        doc = dict(template)
        doc[field] = now - step * (count - index)
        vary(doc, index)
        docs.append(doc)
    return docs


def seed_history(db: Any, count: int, now: datetime) -> None:
    """--records job records (and a metrics document per run, a health check
    per hour), copied from those the real runs above wrote."""
    record = db["scheduler_jobs"].find_one({"type": "monthly-invitations"})
    metrics = db["scheduler_metrics"].find_one({})
    health = db["scheduler_health"].find_one({})
    assert record and health, "the real runs wrote no record to copy"
    job_types = ("monthly-invitations", "reminders", "cleanup", "health-check")

    def vary_record(doc: dict[str, Any], index: int) -> None:
        doc["_id"] = f"bench-{index:06d}"
        doc["type"] = job_types[index % len(job_types)]
        doc["status"] = "failed" if index % 97 == 0 else "success"
        doc["finishedAt"] = doc["startedAt"] + timedelta(seconds=30)
        doc.pop("lease", None)

    def vary_metrics(doc: dict[str, Any], index: int) -> None:
        doc["_id"] = ObjectId()
        doc["runId"] = f"bench-{index:06d}"

    def vary_health(doc: dict[str, Any], index: int) -> None:
        doc["_id"] = ObjectId()

    for collection, template, field, vary, many in (
        ("scheduler_jobs", record, "startedAt", vary_record, count),
        ("scheduler_metrics", metrics, "recordedAt", vary_metrics, count),
        ("scheduler_health", health, "checkedAt", vary_health, HISTORY_DAYS * 24),
    ):
        if template is None:
            continue
        docs = copies(template, many, field, now, vary)
        for start in range(0, len(docs), 1000):
            db[collection].insert_many(docs[start : start + 1000])


def best_of_three(env: dict[str, str], command: list[str]) -> Run:
    runs = [run_scheduler(env, command) for _ in range(3)]
    return min(runs, key=lambda run: run.wall)


def report(label: str, run: Run, target: float) -> bool:
    ok = run.wall <= target and run.exit in (0, 1)  # health-check: 1 is a warning
    busiest = ", ".join(f"{name} {n}" for name, n in run.commands.most_common(5))
    print(f"{label:<24} {run.wall:6.2f} s  exit {run.exit}  CPU {run.cpu:.2f} s  "
          f"{run.round_trips:4d} round trips ({busiest})  "
          f"target <= {target} s: {'ok' if ok else 'OVER'}")  # fmt: skip
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=50_000)
    parser.add_argument("--records", type=int, default=10_000)
    add_server_options(parser)
    args = parser.parse_args()

    with ExitStack() as stack:
        server, server_name = stack.enter_context(benchmark_server(args.server, args.mongodb_uri))
        header(server_name, load_settings().max_workers)
        database = f"faf_observe_{os.getpid()}"
        uri = database_uri(server, database)
        client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(server)
        client.drop_database(database)
        db = client[database]
        store = connect(load_settings(mongodb_uri=uri))
        for collection in ("users", "contacts", "invitations"):
            create_indexes(db, collection, indexes_of(collection))
        store.indexes.ensure()
        now = datetime.now(UTC)
        month = Month.containing(now, load_settings().zone)
        started = time.perf_counter()
        # Every user's send day the 1st: all are candidates whatever the date,
        # so each hourly run reads them all (the month's later days).
        plan = SeedPlan(users=args.users, contacts_per_user=0, max_send_day=1)
        seed(store, plan, now - timedelta(days=40))
        done = mark_cycles_done(db, month, now)
        print(f"\nseeded {args.users} users, {done} cycles of {month} already run, "
              f"in {time.perf_counter() - started:.1f} s")  # fmt: skip

        sink = sink_dump_dir()
        port = stack.enter_context(smtp_sink(Path(sink.name)))
        env = scheduler_env(uri, port)
        counters = started_scan_counters(args, database)
        hourly = best_of_three(env, ["monthly-invitations"])
        seen = scans(counters)
        stats = hourly.report.get("stats", {})
        status = hourly.report.get("status")
        print(f"hourly run: {stats.get('totalUsers')} users due, "
              f"{stats.get('sentInvitations')} sent, status {status}")  # fmt: skip
        ok = report(f"hourly, {args.users} users", hourly, TARGET_HOURLY_SECONDS)
        ok &= stats.get("totalUsers") == 0

        run_scheduler(env, ["health-check"])  # a real health record to copy
        started = time.perf_counter()
        seed_history(db, args.records, now)
        print(f"seeded {args.records} job records and metrics, {HISTORY_DAYS * 24} health "
              f"checks in {time.perf_counter() - started:.1f} s")  # fmt: skip
        for label, command in COMMANDS:
            ok &= report(label, best_of_three(env, command), TARGET_COMMAND_SECONDS)
        for name, (seq, _) in seen.items():
            print(f"sequential scans of {name} during the hourly runs: {seq}")
        client.drop_database(database)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

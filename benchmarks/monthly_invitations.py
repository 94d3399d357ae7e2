"""Benchmark: monthly-invitations end to end, against a fair floor measured in the same run.

    .venv/bin/python benchmarks/monthly_invitations.py --server documentdb --users 500 5000

For each --users count, each part in its own process:
- a MongoDB-wire server: the embedded FerretDB v1 (default), mongo-java-server
  (--server java), FerretDB v2 + DocumentDB from the kit (--server documentdb),
  or --mongodb-uri (for example a real MongoDB);
- Postfix's smtp-sink (C, `apt-get install postfix`), dumping each message to a
  file so every recipient can be counted;
- the data set, with the app's own indexes and the scheduler's: --users users
  with --contacts contacts each, ten per cent of the contacts ineligible, users
  in seven timezones, half with their own send day and time; the target month
  is the previous one, so every user is due;
- `formafriend-scheduler monthly-invitations` as a subprocess (the default
  SCHEDULER_MAX_WORKERS unless --workers), its process tree sampled for memory
  (PSS) every 0.1 s and its costs counted in each of its processes
  (benchmarks/probe: database commands, SMTP commands, CPU);
- checks: every eligible contact has exactly one invitation, `sent`, and
  exactly one message at the sink; nobody else got one;
- the fair floor, in the same run, on the same servers, from as many processes
  as the run has workers, each part timed: bulk-inserting the same number of
  invitation documents into a collection with the same indexes as
  `invitations`; marking each `sent` with bulk UpdateOne by _id with the
  status guard, 20 at a time; recording each contact's send the same way on a
  copy of `contacts` with its indexes; sending the same number of pre-built
  messages, MAIL, RCPT and DATA pipelined; after it, not part of it, the
  outbox's claims and settles for as many messages (the crash guarantee's
  writes: benchmarks/common.py, OUTBOX_PART), printed beside it.

Prints the run, the floor, their ratio, the scheduler's costs per invitation
(CPU, database round trips, SMTP commands, peak memory), on DocumentDB the
scans PostgreSQL counted on the app's collections, and each target. Exit 1
when a check fails.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pymongo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import (
    FLOOR_OUTBOX,
    OUTBOX_PART,
    add_server_options,
    benchmark_server,
    bulk_by_id,
    costs,
    count_recipients,
    create_floor_outbox,
    create_indexes,
    database_uri,
    header,
    in_step,
    indexes_of,
    outbox_claims_and_settles,
    prebuilt_message,
    print_floor,
    print_ratios,
    run_scheduler,
    scans,
    scheduler_env,
    send_prebuilt,
    sink_dump_dir,
    smtp_sink,
    split,
    started_scan_counters,
    survive_crashes,
)
from formafriend_scheduler.config import load_settings
from formafriend_scheduler.eligibility import Month, contact_skip_reason
from formafriend_scheduler.seed import SeedPlan, seed
from formafriend_scheduler.store import connect
from formafriend_scheduler.store.invitations import new_invitation

TARGET_CPU_MS = 0.3
TARGET_ROUND_TRIPS = 0.25
TARGET_RATIO = 1.5
TARGET_DEFAULT_PEAK_MB = 200


FLOOR_PARTS = ("insert", "mark sent", "record contacts", "send")


def floor_worker(
    uri: str, port: int, message: bytes, emails: list[str], contacts: list[Any], barrier: Any
) -> None:
    """One of the floor's processes: each part of its share, the parts in step
    with the other processes (the parent times each part between barriers)."""
    client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(uri)
    db = client.get_default_database()
    now = datetime.now(UTC)
    batch = load_settings().invitation_batch_size
    barrier.wait()  # started: interpreter start-up is not part of the floor
    ids: list[Any] = []
    for start in range(0, len(emails), batch):
        docs = [
            new_invitation(
                from_user_id=f"floor{os.getpid()}",
                to_email=email,
                to_user_id=None,
                month="2000-01",
                template="friendly",
                custom_message=None,
                now=now,
                lifetime=timedelta(days=60),
            )
            for email in emails[start : start + batch]
        ]
        survive_crashes(lambda docs=docs: db["floor_invitations"].insert_many(docs, ordered=False))
        ids += [doc["_id"] for doc in docs]
    barrier.wait()
    sent = {"$set": {"status": "sent", "tracking.sentAt": now, "updatedAt": now}}
    bulk_by_id(uri, "floor_invitations", ids, sent, {"status": {"$in": ["queued", None]}})
    barrier.wait()
    recorded = {"$set": {"tracking.invitationsSent": 1, "tracking.responseRate": 0,
                         "tracking.lastSentAt": now, "updatedAt": now}}  # fmt: skip
    bulk_by_id(uri, "floor_contacts", contacts, recorded, {"tracking.invitationsSent": 0})
    barrier.wait()
    send_prebuilt(port, message, emails)
    barrier.wait()
    outbox_claims_and_settles(uri, ids, "invitation")
    barrier.wait()
    client.close()


def copy_contacts(store: Any) -> None:
    """`floor_contacts`: the contacts as seeded, with the same indexes."""
    db = store.db
    create_indexes(db, "floor_contacts", indexes_of("contacts"))
    batch: list[dict[str, Any]] = []
    for contact in db["contacts"].find():
        batch.append(contact)
        if len(batch) == 1000:
            db["floor_contacts"].insert_many(batch)
            batch = []
    if batch:
        db["floor_contacts"].insert_many(batch)


def measure_floor(uri: str, count: int, port: int, workers: int) -> dict[str, float]:
    """The fair floor's parts, each from `workers` processes, timed in step."""
    db = pymongo.MongoClient(uri).get_default_database()
    create_indexes(db, "floor_invitations", indexes_of("invitations"))
    emails = [f"floor{i}@example.net" for i in range(count)]
    contacts = [d["_id"] for d in db["floor_contacts"].find() if contact_skip_reason(d) is None]
    parts = max(1, workers)
    message = prebuilt_message(
        "invitation", sender_name="Camille Martin", recipient_first_name="Léa"
    )
    shares = [
        (uri, port, message, mine, theirs)
        for mine, theirs in zip(split(emails, parts), split(contacts[:count], parts), strict=True)
    ]
    create_floor_outbox(db)
    floor = in_step(floor_worker, shares, FLOOR_PARTS, [OUTBOX_PART])
    db.drop_collection("floor_invitations")
    db.drop_collection("floor_contacts")
    db.drop_collection(FLOOR_OUTBOX)
    return floor


def benchmark(
    server: str, server_name: str, users: int, args: argparse.Namespace
) -> dict[str, Any]:
    database = f"faf_bench_{os.getpid()}_{users}"
    uri = database_uri(server, database)
    pymongo.MongoClient(server).drop_database(database)
    store = connect(load_settings(mongodb_uri=uri))
    for collection in ("users", "contacts", "invitations"):
        create_indexes(store.db, collection, indexes_of(collection))
    store.indexes.ensure()
    now = datetime.now(UTC)
    month = Month.containing(now, load_settings().zone)
    month = Month(month.year - 1, 12) if month.month == 1 else Month(month.year, month.month - 1)
    started = time.perf_counter()
    seeded = seed(
        store, SeedPlan(users=users, contacts_per_user=args.contacts), now - timedelta(days=40)
    )
    copy_contacts(store)
    seconds = time.perf_counter() - started
    print(
        f"\nseeded {seeded.users} users, {seeded.contacts} contacts "
        f"({seeded.eligible_contacts} eligible) in {seconds:.1f} s",
        flush=True,
    )

    with sink_dump_dir() as dump:
        dump_dir = Path(dump)
        (dump_dir / "run").mkdir()
        (dump_dir / "floor").mkdir()
        counters = started_scan_counters(args, database)
        with smtp_sink(dump_dir / "run") as port:
            env = scheduler_env(uri, port)
            command = ["monthly-invitations", "--month", str(month)]
            if args.workers is not None:
                command += ["--workers", str(args.workers)]
            run = run_scheduler(env, command)
        seen_scans = scans(counters)
        received = count_recipients(dump_dir / "run")
        invitations = store.db["invitations"]
        count = seeded.eligible_contacts
        checks = {
            "one invitation per eligible contact": invitations.count_documents({}) == count,
            "every invitation sent": invitations.count_documents({"status": "sent"}) == count,
            "one message per eligible contact": len(received) == count
            and set(received.values()) <= {1},
            "run succeeded": run.exit == 0,
        }
        workers = args.workers if args.workers is not None else load_settings().max_workers
        with smtp_sink(dump_dir / "floor") as port:
            floor = measure_floor(uri, count, port, workers)
    pymongo.MongoClient(server).drop_database(database)

    print(f"data: {users} users x {args.contacts} contacts, {count} eligible; workers: {workers}")
    print(f"run:   {run.wall:8.1f} s  {count / run.wall:8.0f} invitations/s")
    print_floor(floor, count, "invitation")
    ratio = print_ratios(run.wall, floor, count, TARGET_CPU_MS)
    figures = costs(run, count, "invitation")
    stats = run.report.get("stats", {})
    print(
        f"job stats: sent {stats.get('sentInvitations')}, "
        f"failed {stats.get('failedInvitations')}, skipped contacts {stats.get('skippedContacts')}"
    )
    for name, ok in checks.items():
        print(f"check: {name}: {'ok' if ok else 'FAILED'}")
    return {"users": users, "ratio": ratio, "figures": figures, "checks": checks,
            "scans": seen_scans, "workers": workers, "count": count}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--users",
        type=int,
        nargs="+",
        default=[5000],
        help="one run per count; with two or more, memory flatness is checked",
    )
    parser.add_argument("--contacts", type=int, default=20)
    parser.add_argument("--workers", type=int, help="default: SCHEDULER_MAX_WORKERS (4)")
    add_server_options(parser)
    args = parser.parse_args()

    results = []
    with benchmark_server(args.server, args.mongodb_uri) as (server, server_name):
        header(
            server_name, args.workers if args.workers is not None else load_settings().max_workers
        )
        for users in args.users:
            results.append(benchmark(server, server_name, users, args))

    print("\ntargets:")
    ok = all(all(result["checks"].values()) for result in results)
    for result in results:
        figures, label = result["figures"], f"{result['users']} users"
        for name, value, target in (
            ("CPU per invitation (ms)", figures["cpu_ms"], TARGET_CPU_MS),
            ("database round trips per invitation", figures["round_trips"], TARGET_ROUND_TRIPS),
            ("run / fair floor", result["ratio"], TARGET_RATIO),
        ):
            print(
                f"  {label}: {name} {value:.3f} <= {target}: {'ok' if value <= target else 'OVER'}"
            )
        if args.workers is None:
            peak = figures["peak_mb"]
            verdict = "ok" if peak <= TARGET_DEFAULT_PEAK_MB else "OVER"
            print(
                f"  {label}: peak memory with the default settings {peak:.1f} MB <= "
                f"{TARGET_DEFAULT_PEAK_MB}: {verdict}"
            )
        for name, (seq, _) in result["scans"].items():
            print(f"  {label}: sequential scans of {name}: {seq}")
    if len(results) > 1:
        # What one more invitation costs, and what a run costs before its
        # first (start-up: imports, the fork server, connections), from the
        # smallest and largest runs: a figure per invitation mixes the two.
        first, last = results[0], results[-1]
        cpu = [r["figures"]["cpu_ms"] * r["count"] / 1000 for r in (first, last)]
        marginal = (cpu[1] - cpu[0]) / (last["count"] - first["count"]) * 1000
        fixed = cpu[0] - marginal * first["count"] / 1000
        print(f"  CPU: {marginal:.3f} ms per further invitation, {fixed:.2f} s per run "
              "whatever its size (not a target: how the CPU per invitation splits)")  # fmt: skip
        small, large = results[0]["figures"]["peak_mb"], results[-1]["figures"]["peak_mb"]
        flat = large <= small * 1.1
        print(
            f"  memory: {results[-1]['users']} users {large:.1f} MB within 10 % of "
            f"{results[0]['users']} users {small:.1f} MB: {'ok' if flat else 'OVER'}"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark: reminders end to end over a backlog of sent invitations, against
a fair floor measured in the same run.

    .venv/bin/python benchmarks/reminders.py --server documentdb --invitations 100000

Seeds --invitations `sent` invitations (users with 20 contacts each), a
--due-share of them sent 3 to 6 days ago (due their first reminder) and the
rest 1 day ago (not due), with the app's own indexes and the scheduler's; runs
`formafriend-scheduler reminders` as a subprocess against the MongoDB-wire
server and Postfix's smtp-sink, with quiet hours open around the current hour,
its process tree sampled for memory and its costs counted in each process
(benchmarks/probe). Checks that every due invitation got exactly one first
reminder and exactly one message, and nothing else did.

The fair floor, in the same run, on a copy of the invitations with the same
indexes: reading the due invitations with the same query (one cursor), then,
from as many processes as the run has workers, pushing each one's reminder
with bulk UpdateOne by _id guarded by "no first reminder yet", 20 at a time,
and sending the same number of pre-built messages (MAIL, RCPT, DATA pipelined).
After it, not part of it, the same processes make the outbox's claims and
settles for as many messages (benchmarks/common.py: OUTBOX_PART), and the
run is also printed against the floor with them.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

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
    machine_cpu,
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
from benchmarks.monthly_invitations import TARGET_CPU_MS, TARGET_RATIO, TARGET_ROUND_TRIPS
from formafriend_scheduler.config import load_settings
from formafriend_scheduler.seed import SeedPlan, sample_contact, sample_user
from formafriend_scheduler.store import connect
from formafriend_scheduler.store.invitations import new_invitation, reminder_candidates

CONTACTS_PER_USER = 20
FLOOR_PARTS = ("push reminders", "send")


def seed_backlog(uri: str, count: int, due_share: float, now: datetime) -> set[str]:
    """Users, contacts and `sent` invitations (and their copy for the floor);
    returns the e-mails due a reminder."""
    rng = random.Random(7)
    client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(uri)
    db = client.get_default_database()
    for collection in ("users", "contacts", "invitations"):
        create_indexes(db, collection, indexes_of(collection))
    create_indexes(db, "floor_invitations", indexes_of("invitations"))
    due: set[str] = set()
    made = 0
    users = (count + CONTACTS_PER_USER - 1) // CONTACTS_PER_USER
    # Users as the app shapes them, all on the default schedule: their
    # timezone is the one the run's quiet hours are opened in.
    plan = SeedPlan(users=users, contacts_per_user=CONTACTS_PER_USER, default_schedule_share=1.0)
    for start in range(0, users, 50):
        batch = [sample_user(rng, i, plan, now) for i in range(start, min(users, start + 50))]
        # The inserts survive the kit's PostgreSQL crashes (a 30-minute seed
        # died of one on 2026-12-07): retried with the same _ids.
        survive_crashes(lambda b=batch: db.users.insert_many(b, ordered=False))  # gives _ids
        contacts, invitations = [], []
        for offset, user in enumerate(batch):
            # As the monthly run sends them: a user's invitations together,
            # so those due a reminder are due it in the same hour.
            sent_due = now - timedelta(days=rng.uniform(3.01, 6))
            for number in range(min(CONTACTS_PER_USER, count - made)):
                made += 1
                # The seed's e-mail (user<i>@example.org), not its username,
                # which may hold accents: an address the scheduler accepts.
                email = f"c{number}.user{start + offset}@example.net"
                contacts.append(sample_contact(rng, user["_id"], email, now))
                is_due = rng.random() < due_share
                sent_at = sent_due if is_due else now - timedelta(days=1)
                doc = new_invitation(
                    from_user_id=user["_id"],
                    to_email=email,
                    to_user_id=None,
                    month="2000-01",
                    template="friendly",
                    custom_message=None,
                    now=sent_at,
                    lifetime=timedelta(days=60),
                )
                doc.update(status="sent", tracking={"createdAt": sent_at, "sentAt": sent_at})
                invitations.append(doc)
                if is_due:
                    due.add(email)
        # The floor's copy: the same documents, _ids included.
        for collection, docs in (
            ("contacts", contacts),
            ("invitations", invitations),
            ("floor_invitations", invitations),
        ):
            survive_crashes(lambda c=collection, d=docs: db[c].insert_many(d, ordered=False))
    client.close()
    return due


def floor_worker(uri: str, port: int, message: bytes, ids: list[Any], barrier: Any) -> None:
    barrier.wait()  # started
    now = datetime.now(UTC)
    reminder = {"type": "first", "sentAt": now, "opened": False}
    pushed = {"$push": {"reminders": reminder}, "$set": {"updatedAt": now}}
    bulk_by_id(uri, "floor_invitations", ids, pushed, {"reminders.type": {"$ne": "first"}})
    barrier.wait()
    send_prebuilt(port, message, [f"floor{i}@example.net" for i in range(len(ids))])
    barrier.wait()
    outbox_claims_and_settles(uri, ids, "reminder-first")
    barrier.wait()


def measure_floor(uri: str, port: int, workers: int, now: datetime) -> dict[str, float]:
    settings = load_settings()
    db = pymongo.MongoClient(uri).get_default_database()
    query = reminder_candidates(now, settings.first_reminder_days, settings.second_reminder_days)
    started, own_started, machine_started = time.perf_counter(), time.process_time(), machine_cpu()
    ids = [doc["_id"] for doc in db["floor_invitations"].find(query, {"_id": 1}).batch_size(1000)]
    read, own_read = time.perf_counter() - started, time.process_time() - own_started
    machine_read = machine_cpu() - machine_started
    message = prebuilt_message("reminder-first", sender_name="Camille", days_left=55)
    shares = [(uri, port, message, share) for share in split(ids, max(1, workers))]
    create_floor_outbox(db)
    floor = {"read due": read, **in_step(floor_worker, shares, FLOOR_PARTS, [OUTBOX_PART])}
    floor["total"] += read
    floor["cpu"] += own_read  # this process's, reading: the floor's own too
    floor["machine cpu"] += machine_read
    db.drop_collection("floor_invitations")
    db.drop_collection(FLOOR_OUTBOX)
    return floor


def quiet_hours_open_now() -> dict[str, str]:
    local = datetime.now(UTC).astimezone(ZoneInfo(load_settings().timezone))
    start, end = local - timedelta(hours=1), local + timedelta(hours=3)
    return {
        "SCHEDULER_REMINDER_WINDOW_START": f"{start:%H:%M}",
        "SCHEDULER_REMINDER_WINDOW_END": f"{end:%H:%M}",
    }


def report(
    run: Any,
    floor: dict[str, float],
    due: int,
    total: int,
    workers: int,
    checks: dict[str, bool],
    seen_scans: dict[str, tuple[int, int]],
) -> None:
    stats = run.report.get("stats", {})
    sent = stats.get("firstRemindersSent", 0) + stats.get("secondRemindersSent", 0)
    print(f"backlog: {total} sent invitations, {due} due a reminder; workers: {workers}")
    print(f"run:   {run.wall:8.1f} s  {due / run.wall:8.0f} reminders/s")
    print_floor(floor, due, "reminder")
    ratio = print_ratios(run.wall, floor, due, TARGET_CPU_MS)
    figures = costs(run, max(1, due), "reminder")
    print(f"job stats: checked {stats.get('candidatesChecked')}, sent {sent}, "
          f"failed {stats.get('failedReminders')}")  # fmt: skip
    for name, ok in checks.items():
        print(f"check: {name}: {'ok' if ok else 'FAILED'}")
    print("\ntargets:")
    for name, value, target in (
        ("CPU per reminder (ms)", figures["cpu_ms"], TARGET_CPU_MS),
        ("database round trips per reminder", figures["round_trips"], TARGET_ROUND_TRIPS),
        ("run / fair floor", ratio, TARGET_RATIO),
    ):
        print(f"  {name} {value:.3f} <= {target}: {'ok' if value <= target else 'OVER'}")
    for name, (seq, _) in seen_scans.items():
        print(f"  sequential scans of {name}: {seq}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--invitations", type=int, default=100_000)
    parser.add_argument("--due-share", type=float, default=0.6)
    parser.add_argument("--workers", type=int, help="default: SCHEDULER_MAX_WORKERS (4)")
    add_server_options(parser)
    args = parser.parse_args()
    workers = args.workers if args.workers is not None else load_settings().max_workers

    with benchmark_server(args.server, args.mongodb_uri) as (server, server_name):
        header(server_name, workers)
        database = f"faf_bench_reminders_{os.getpid()}"
        uri = database_uri(server, database)
        pymongo.MongoClient(server).drop_database(database)
        now = datetime.now(UTC)
        started = time.perf_counter()
        due = seed_backlog(uri, args.invitations, args.due_share, now)
        store = connect(load_settings(mongodb_uri=uri))
        store.indexes.ensure()
        total = store.db["invitations"].count_documents({})
        print(f"seeded {total} sent invitations ({len(due)} due) in "
              f"{time.perf_counter() - started:.1f} s", flush=True)  # fmt: skip

        with sink_dump_dir() as dump:
            dump_dir = Path(dump)
            (dump_dir / "run").mkdir()
            (dump_dir / "floor").mkdir()
            counters = started_scan_counters(args, database)
            with smtp_sink(dump_dir / "run") as port:
                env = scheduler_env(uri, port, **quiet_hours_open_now())
                command = ["reminders"]
                if args.workers is not None:
                    command += ["--workers", str(args.workers)]
                run = run_scheduler(env, command)
            seen_scans = scans(counters)
            received = count_recipients(dump_dir / "run")
            reminded = store.db["invitations"].count_documents({"reminders.type": "first"})
            checks = {
                "one first reminder per due invitation": reminded == len(due),
                "one message per due invitation, none to others": set(received) == due
                and set(received.values()) <= {1},
                "run succeeded": run.exit == 0,
            }
            with smtp_sink(dump_dir / "floor") as port:
                floor = measure_floor(uri, port, workers, now)
        pymongo.MongoClient(server).drop_database(database)

    report(run, floor, len(due), total, workers, checks, seen_scans)
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())

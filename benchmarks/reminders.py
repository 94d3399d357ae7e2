"""Benchmark: reminders end to end over a backlog of sent invitations.

    .venv/bin/python benchmarks/reminders.py --invitations 100000 --due-share 0.6

Seeds --invitations `sent` invitations (the monthly benchmark's users and
contacts: 20 per user), a --due-share of them sent 3 to 6 days ago (due their
first reminder) and the rest 1 day ago (not due), then runs
`formafriend-scheduler reminders` as a subprocess against the MongoDB-wire
server and Postfix's smtp-sink, with quiet hours open all day. Checks that
every due invitation got exactly one first reminder and exactly one message,
and nothing else did; prints reminders per second, wall time, peak memory
(process tree, PSS) and CPU of the scheduler.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psutil
import pymongo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import (
    MB,
    add_server_options,
    benchmark_server,
    count_recipients,
    run_scheduler,
    smtp_sink,
)
from formafriend_scheduler.config import load_settings
from formafriend_scheduler.store import connect
from formafriend_scheduler.store.invitations import new_invitation

CONTACTS_PER_USER = 20


def seed_backlog(uri: str, count: int, due_share: float, now: datetime) -> set[str]:
    """Users, contacts and `sent` invitations; returns the e-mails due a reminder."""
    rng = random.Random(7)
    client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(uri)
    db = client.get_default_database()
    due: set[str] = set()
    made = 0
    users = (count + CONTACTS_PER_USER - 1) // CONTACTS_PER_USER
    for start in range(0, users, 50):
        batch = [
            {
                "username": f"user{i}",
                "email": f"user{i}@example.org",
                "profile": {"firstName": "Camille"},
            }
            for i in range(start, min(users, start + 50))
        ]
        db.users.insert_many(batch)  # gives each user its _id
        contacts, invitations = [], []
        for user in batch:
            for number in range(min(CONTACTS_PER_USER, count - made)):
                made += 1
                email = f"c{number}.{user['username']}@example.net"
                contacts.append({"ownerId": user["_id"], "email": email, "status": "active"})
                is_due = rng.random() < due_share
                sent_at = now - (
                    timedelta(days=rng.uniform(3.01, 6)) if is_due else timedelta(days=1)
                )
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
        db.contacts.insert_many(contacts)
        db.invitations.insert_many(invitations)
    client.close()
    return due


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--invitations", type=int, default=100_000)
    parser.add_argument("--due-share", type=float, default=0.6)
    parser.add_argument("--workers", type=int, default=2)
    add_server_options(parser)
    args = parser.parse_args()

    with ExitStack() as stack:
        server, server_name = stack.enter_context(benchmark_server(args.server, args.mongodb_uri))
        database = f"faf_bench_reminders_{os.getpid()}"
        uri = server.rstrip("/").split("?")[0] + "/" + database
        dump_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="faf-sink-")))
        os.chmod(dump_dir, 0o755)
        now = datetime.now(UTC)
        started = time.perf_counter()
        due = seed_backlog(uri, args.invitations, args.due_share, now)
        store = connect(load_settings(mongodb_uri=uri))
        store.indexes.ensure()
        total = store.db["invitations"].count_documents({})
        seconds = time.perf_counter() - started
        print(f"seeded {total} sent invitations ({len(due)} due) in {seconds:.1f} s")

        with smtp_sink(dump_dir) as port:
            env = {
                **os.environ,
                "MONGODB_URI": uri,
                "SMTP_URL": f"smtp://127.0.0.1:{port}?security=none",
                "SCHEDULER_REMINDER_WINDOW_START": "00:00",
                "SCHEDULER_REMINDER_WINDOW_END": "23:59",
            }
            env.pop("EMAIL_TRANSPORT", None)
            run = run_scheduler(env, ["reminders", "--workers", str(args.workers)])
        received = count_recipients(dump_dir)
        reminded = store.db["invitations"].count_documents({"reminders.type": "first"})
        checks = {
            "one first reminder per due invitation": reminded == len(due),
            "one message per due invitation, none to others": set(received) == due
            and set(received.values()) <= {1},
            "run succeeded": run["exit"] == 0,
        }
        if args.mongodb_uri:
            pymongo.MongoClient(server).drop_database(database)

    stats = run["report"]["stats"]
    sent = stats["firstRemindersSent"] + stats["secondRemindersSent"]
    print()
    print(f"machine: {os.cpu_count()} cores, {psutil.virtual_memory().total // MB} MB; "
          f"server: {server_name}; "
          f"workers: {args.workers}")  # fmt: skip
    print(f"backlog: {total} sent invitations, {len(due)} due a reminder")
    print(f"run: {run['wall']:8.1f} s  {sent / run['wall']:8.0f} reminders/s  "
          f"peak memory {run['peak'] / MB:6.1f} MB (tree, PSS)  "
          f"scheduler CPU {run['cpu']:.1f} s")  # fmt: skip
    print(f"job stats: checked {stats['candidatesChecked']}, sent {sent}, "
          f"failed {stats['failedReminders']}")  # fmt: skip
    for name, ok in checks.items():
        print(f"check: {name}: {'ok' if ok else 'FAILED'}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())

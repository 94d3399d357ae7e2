"""Benchmark: monthly-invitations end to end, against a floor measured in the same run.

    .venv/bin/python benchmarks/monthly_invitations.py --users 5000 --contacts 20

What it does, each part in its own process:
- a MongoDB-wire server: the embedded FerretDB of tests/ferretdb (default),
  mongo-java-server with --server java (benchmarks/mongo-java-server), or
  --mongodb-uri (for example a real MongoDB);
- Postfix's smtp-sink (C, `apt-get install postfix`), dumping each message to a
  file so every recipient can be counted;
- the data set: --users users with --contacts contacts each, ten per cent of
  the contacts ineligible (opted out, bounced, complained, ...), users in seven
  timezones, half with their own send day and time; the target month is the
  previous one, so every user is due;
- `formafriend-scheduler monthly-invitations` as a subprocess, its whole
  process tree sampled for memory (PSS) every 0.1 s;
- checks: every eligible contact has exactly one invitation, `sent`, and
  exactly one message at the sink; nobody else got one;
- the floor, in the same run and on the same servers: inserting the same
  number of invitation documents with bulk writes, then sending the same
  number of pre-built messages to the sink from --workers processes.

Prints invitations per second, wall time and peak memory for the run and the
floor, and the ratio. Exit status 1 when a check fails.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import smtplib
import sys
import tempfile
import time
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psutil
import pymongo

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.common import (  # noqa: E402
    MB,
    add_server_options,
    benchmark_server,
    count_recipients,
    run_scheduler,
    smtp_sink,
)
from formafriend_scheduler.config import load_settings  # noqa: E402
from formafriend_scheduler.eligibility import Month  # noqa: E402
from formafriend_scheduler.mail.compose import Letter  # noqa: E402
from formafriend_scheduler.mail.setup import composer_for  # noqa: E402
from formafriend_scheduler.seed import SeedPlan, seed  # noqa: E402
from formafriend_scheduler.store import connect  # noqa: E402
from formafriend_scheduler.store.invitations import new_invitation  # noqa: E402


def _send_prebuilt(port: int, messages: list[bytes], recipients: list[str]) -> None:
    connection = smtplib.SMTP("127.0.0.1", port)
    for index, recipient in enumerate(recipients):
        connection.sendmail(
            "noreply@form-a-friend.com", [recipient], messages[index % len(messages)]
        )
    connection.quit()


def measure_floor(uri: str, database: str, count: int, port: int, workers: int) -> dict[str, float]:
    """Bulk-insert `count` invitation documents, then send `count` pre-built
    messages from `workers` processes: what any implementation must pay."""
    settings = load_settings(mongodb_uri=uri)
    client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(uri)
    collection = client[database]["floor_invitations"]
    now = datetime.now(UTC)
    started = time.perf_counter()
    batch = settings.invitation_batch_size
    for start in range(0, count, batch):
        collection.insert_many(
            [
                new_invitation(
                    from_user_id=i // 20,
                    to_email=f"floor{i}@example.net",
                    to_user_id=None,
                    month="2000-01",
                    template="friendly",
                    custom_message=None,
                    now=now,
                    lifetime=timedelta(days=60),
                )
                for i in range(start, min(count, start + batch))
            ],
            ordered=False,
        )
    insert_seconds = time.perf_counter() - started

    composer = composer_for(settings)  # the real templates, built before the clock starts
    prebuilt = [
        composer.compose(
            Letter(
                kind="invitation",
                key=f"floor{i}",
                tone=("friendly", "professional", "fun")[i % 3],
                month=Month(2000, 1),
                token=f"{i:064x}",
                expires_at=now,
                timezone=ZoneInfo("Europe/Paris"),
                sender_name="Camille Martin",
                recipient_email="x@example.net",
                recipient_first_name="Léa",
            ),
            now,
        ).data
        for i in range(100)
    ]
    recipients = [f"floor{i}@example.net" for i in range(count)]
    shares = [recipients[w::workers] for w in range(workers)]
    spawn = multiprocessing.get_context("spawn")
    started = time.perf_counter()
    senders = [
        spawn.Process(target=_send_prebuilt, args=(port, prebuilt, share)) for share in shares
    ]
    for sender in senders:
        sender.start()
    for sender in senders:
        sender.join()
    send_seconds = time.perf_counter() - started
    collection.drop()
    client.close()
    return {"insert": insert_seconds, "send": send_seconds, "total": insert_seconds + send_seconds}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=5000)
    parser.add_argument("--contacts", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    add_server_options(parser)
    args = parser.parse_args()

    with ExitStack() as stack:
        server, server_name = stack.enter_context(benchmark_server(args.server, args.mongodb_uri))
        database = f"faf_bench_{os.getpid()}"
        uri = server.rstrip("/").split("?")[0] + "/" + database
        dump_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="faf-sink-")))
        os.chmod(dump_dir, 0o755)  # smtp-sink, as nobody, must reach the folders below
        (dump_dir / "run").mkdir()
        (dump_dir / "floor").mkdir()

        store = connect(load_settings(mongodb_uri=uri))
        now = datetime.now(UTC)
        month = Month.containing(now, load_settings().zone)
        month = (
            Month(month.year - 1, 12) if month.month == 1 else Month(month.year, month.month - 1)
        )
        started = time.perf_counter()
        plan = SeedPlan(users=args.users, contacts_per_user=args.contacts)
        seeded = seed(store, plan, now - timedelta(days=40))
        store.indexes.ensure()
        print(
            f"seeded {seeded.users} users, {seeded.contacts} contacts "
            f"({seeded.eligible_contacts} eligible) in {time.perf_counter() - started:.1f} s",
            flush=True,
        )

        with smtp_sink(dump_dir / "run") as port:
            env = {
                **os.environ,
                "MONGODB_URI": uri,
                "SMTP_URL": f"smtp://127.0.0.1:{port}?security=none",
            }
            env.pop("EMAIL_TRANSPORT", None)
            run = run_scheduler(
                env, ["monthly-invitations", "--month", str(month), "--workers", str(args.workers)]
            )
        received = count_recipients(dump_dir / "run")

        invitations = store.db["invitations"]
        checks = {
            "one invitation per eligible contact": invitations.count_documents({})
            == seeded.eligible_contacts,
            "every invitation sent": invitations.count_documents({"status": "sent"})
            == seeded.eligible_contacts,
            "one message per eligible contact": len(received) == seeded.eligible_contacts
            and set(received.values()) <= {1},
            "run succeeded": run["exit"] == 0,
        }

        with smtp_sink(dump_dir / "floor") as port:
            floor = measure_floor(uri, database, seeded.eligible_contacts, port, args.workers)
        if args.mongodb_uri:  # the embedded server's data go away with it
            pymongo.MongoClient(server).drop_database(database)

    count = seeded.eligible_contacts
    stats = run["report"]["stats"]
    print()
    print(f"machine: {os.cpu_count()} cores, {psutil.virtual_memory().total // MB} MB; "
          f"server: {server_name}; "
          f"workers: {args.workers}")  # fmt: skip
    print(f"data: {args.users} users x {args.contacts} contacts, {count} eligible")
    print(f"run:   {run['wall']:8.1f} s  {count / run['wall']:8.0f} invitations/s  "
          f"peak memory {run['peak'] / MB:6.1f} MB (tree, PSS; the job record says "
          f"{run['report']['peakMemoryMB']} MB)")  # fmt: skip
    print(f"       CPU of the scheduler's process tree: {run['cpu']:.1f} s "
          f"({run['cpu'] / count * 1000:.2f} ms per invitation); the rest of the wall time "
          "is spent waiting on the database server and the sink")  # fmt: skip
    print(f"floor: {floor['total']:8.1f} s  {count / floor['total']:8.0f} invitations/s  "
          f"(bulk insert {floor['insert']:.1f} s + pre-built sends "
          f"{floor['send']:.1f} s)")  # fmt: skip
    print(f"ratio run/floor: {run['wall'] / floor['total']:.2f}")
    print(f"job stats: sent {stats['sentInvitations']}, failed {stats['failedInvitations']}, "
          f"skipped contacts {stats['skippedContacts']}")  # fmt: skip
    for name, ok in checks.items():
        print(f"check: {name}: {'ok' if ok else 'FAILED'}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())

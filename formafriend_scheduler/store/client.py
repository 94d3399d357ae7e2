"""One lazily created MongoClient per process, and the `Store` facade.

PyMongo clients must not cross a fork, so the client is made on first use and
re-made when the process id changes (a pool worker never reuses its parent's).
"""

from __future__ import annotations

import atexit
import os
import time
from dataclasses import replace
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from pymongo import MongoClient, periodic_executor
from pymongo.common import URI_OPTIONS_ALIAS_MAP, URI_OPTIONS_VALIDATOR_MAP
from pymongo.database import Database
from pymongo.errors import ConfigurationError
from pymongo.synchronous import monitor

from formafriend_scheduler.clock import to_utc
from formafriend_scheduler.config import Settings
from formafriend_scheduler.errors import ConfigError
from formafriend_scheduler.redact import Redactor
from formafriend_scheduler.store.alerts import AlertStateRepository, CounterRepository
from formafriend_scheduler.store.base import (
    FERRETDB_V1_UPDATES_PER_BULK,
    MAX_BULK_OPERATIONS,
    Document,
)
from formafriend_scheduler.store.claims import ClaimLedger
from formafriend_scheduler.store.contacts import ContactRepository
from formafriend_scheduler.store.cycles import CycleRepository
from formafriend_scheduler.store.indexes import IndexManager
from formafriend_scheduler.store.invitations import InvitationRepository
from formafriend_scheduler.store.locks import LockRepository
from formafriend_scheduler.store.outbox import OutboxRepository
from formafriend_scheduler.store.records import HealthRepository, JobRepository, MetricsRepository
from formafriend_scheduler.store.retry import RetryPolicy, transient
from formafriend_scheduler.store.users import UserRepository

# `mongomock://name/db` is an in-process database for trials, the demo and fast
# tests. It has to outlive one command's Store so that a test (or the demo)
# can seed data and then run commands on it; the "server" is this registry.
_IN_PROCESS_SERVERS: dict[str, Any] = {}


def unknown_uri_options(uri: str) -> list[str]:
    """The query options of a MongoDB URI that PyMongo does not know."""
    names = [name for name, _ in parse_qsl(urlsplit(uri).query, keep_blank_values=True)]
    known = set(URI_OPTIONS_VALIDATOR_MAP) | set(URI_OPTIONS_ALIAS_MAP)
    return [name for name in names if name.lower() not in known]


class ClientProvider:
    def __init__(self, uri: str, timeout_seconds: float) -> None:
        self._uri = uri
        self._timeout_ms = int(timeout_seconds * 1000)
        self._client: Any = None
        self._pid: int | None = None
        self._updates_per_bulk: int | None = None

    @property
    def in_process(self) -> bool:
        return self._uri.startswith("mongomock://")

    def client(self) -> Any:
        if self._client is None or self._pid != os.getpid():
            self._client = self._make()
            self._pid = os.getpid()
            self._updates_per_bulk = None
        return self._client

    def updates_per_bulk(self) -> int:
        """Update operations one `update` command may carry on this server:
        asked once per client (FerretDB v1 names itself in `buildInfo`)."""
        client = self.client()
        if self._updates_per_bulk is None:
            if self.in_process:
                self._updates_per_bulk = MAX_BULK_OPERATIONS
            else:
                info = client.admin.command("buildInfo")
                v1 = "ferretdbVersion" in info
                self._updates_per_bulk = FERRETDB_V1_UPDATES_PER_BULK if v1 else MAX_BULK_OPERATIONS
        return self._updates_per_bulk

    def _make(self) -> Any:
        if self.in_process:
            import mongomock  # noqa: PLC0415 (tests and the demo only: 0.1 s off every start)

            name = urlsplit(self._uri).netloc or "default"
            if name not in _IN_PROCESS_SERVERS:
                _IN_PROCESS_SERVERS[name] = mongomock.MongoClient(tz_aware=True)
            return _IN_PROCESS_SERVERS[name]
        try:
            return self._client_for_uri()
        except (ConfigurationError, ValueError) as error:  # InvalidURI; a bad port
            # Parsed only now (mongodb+srv needs DNS), so reported as bad config.
            raise ConfigError([f"MONGODB_URI: {Redactor()(str(error))}"]) from None

    def _client_for_uri(self) -> Any:
        # PyMongo ignores an option it does not know, with a UserWarning that
        # does not name it, printed raw (even under cron). A typo such as
        # `retryWrite=true` deserves a configuration error that names it.
        unknown = unknown_uri_options(self._uri)
        if unknown:
            known = "see https://www.mongodb.com/docs/manual/reference/connection-string-options/"
            raise ConfigError(
                [f"MONGODB_URI: unknown option {name!r} ({known})" for name in unknown]
            )
        return MongoClient(
            self._uri,
            tz_aware=True,
            connect=False,
            serverSelectionTimeoutMS=self._timeout_ms,
            connectTimeoutMS=self._timeout_ms,
            socketTimeoutMS=max(self._timeout_ms * 6, 60_000),
            appname="formafriend-scheduler",
        )

    def close(self) -> None:
        if self._client is not None and not self.in_process and self._pid == os.getpid():
            self._client.close()
            _skip_exit_join()
        self._client = None


def _skip_exit_join() -> None:
    """At exit PyMongo joins its monitor threads, which notice they were
    stopped only when their 0.5 s sleep ends: 0.5 s added to every command
    (`history` took 1.02 s, 0.5 s of it waiting here). Once the client is
    closed those threads do nothing more, and they are daemon threads, so the
    process need not wait for them."""
    # PyMongo 4.9+ registers monitor._shutdown_resources; earlier versions
    # periodic_executor._shutdown_executors. Private names: if they move,
    # nothing breaks, the exit is just 0.5 s slower again.
    for module in (monitor, periodic_executor):
        for name in ("_shutdown_resources", "_shutdown_executors"):
            shutdown = getattr(module, name, None)
            if shutdown is not None:
                atexit.unregister(shutdown)


class Store:
    """Entry point to the repositories; cheap to build, connects on first use."""

    def __init__(self, provider: ClientProvider, database: str, retry_policy: RetryPolicy) -> None:
        self._provider = provider
        self.database_name = database
        self.retry_policy = retry_policy
        self.claims = ClaimLedger(self)
        self.locks = LockRepository(self, self.claims)
        self.jobs = JobRepository(self)
        self.health = HealthRepository(self)
        self.metrics = MetricsRepository(self)
        self.invitations = InvitationRepository(self)
        self.contacts = ContactRepository(self)
        self.users = UserRepository(self)
        self.outbox = OutboxRepository(self, self.claims)
        self.cycles = CycleRepository(self)
        self.alerts = AlertStateRepository(self)
        self.counters = CounterRepository(self)

    @property
    def db(self) -> Database[Document]:
        db: Database[Document] = self._provider.client()[self.database_name]
        return db

    @property
    def in_process(self) -> bool:
        return self._provider.in_process

    @property
    def updates_per_bulk(self) -> int:
        return self._provider.updates_per_bulk()

    def once(self) -> Store:
        """This store (same client) making one attempt per operation: for a
        caller that retries on its own schedule (the lease heartbeat)."""
        return Store(self._provider, self.database_name, replace(self.retry_policy, attempts=1))

    def patient(self, seconds: float) -> Store:
        """This store (same client) retrying transient errors for up to
        `seconds`: for the writes a run must not give up on early, its outcome
        and the release of its lease, through a server restart."""
        policy = replace(self.retry_policy, patience_seconds=seconds)
        return Store(self._provider, self.database_name, policy)

    @property
    def indexes(self) -> IndexManager:
        return IndexManager(self.db, self.retry_policy)

    @transient
    def ping(self) -> float:
        """Round trip of a `ping` command, in milliseconds."""
        started = time.perf_counter()
        self.db.command("ping")
        return (time.perf_counter() - started) * 1000

    @transient
    def server_time(self) -> datetime | None:
        """The server's clock (`hello.localTime`), or None for in-process databases."""
        if self.in_process:
            return None
        reply = self.db.command("hello")
        local_time = reply.get("localTime")
        return to_utc(local_time) if isinstance(local_time, datetime) else None

    @transient
    def insert_documents(self, collection: str, documents: list[Document]) -> int:
        """Bulk insert (sample data); returns how many were inserted."""
        if not documents:
            return 0
        return len(self.db[collection].insert_many(documents, ordered=False).inserted_ids)

    @transient
    def is_empty(self) -> bool:
        """True when the database holds no users (the app's data)."""
        return self.db["users"].count_documents({}, limit=1) == 0

    def close(self) -> None:
        self._provider.close()


def connect(settings: Settings, *, retry_attempts: int | None = None) -> Store:
    """A Store for the configured database (no I/O until first use)."""
    attempts = retry_attempts if retry_attempts is not None else settings.mongodb_retry_attempts
    return Store(
        ClientProvider(settings.mongodb_uri, settings.mongodb_timeout_seconds),
        settings.database_name,
        RetryPolicy(attempts=attempts),
    )

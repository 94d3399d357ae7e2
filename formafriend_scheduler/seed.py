"""Sample data shaped like the app's (data-model.md), for trials, the demo
and the benchmarks: users in several timezones with contacts in every state.

Deterministic for a given seed. Writes in bulk, `batch` documents at a time,
so millions of contacts never sit in memory at once.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from formafriend_scheduler.eligibility import contact_skip_reason
from formafriend_scheduler.store import Store

TIMEZONES = (
    "Europe/Paris",
    "Europe/London",
    "America/New_York",
    "America/Los_Angeles",
    "America/Sao_Paulo",
    "Asia/Tokyo",
    "Australia/Sydney",
)
TONES = ("friendly", "professional", "fun")
FIRST_NAMES = (
    "Camille",
    "Louis",
    "Chloé",
    "Hugo",
    "Léa",
    "Arthur",
    "Manon",
    "Jules",
    "Inès",
    "Nathan",
)
LAST_NAMES = ("Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand")
# One in ten contacts cannot be invited, each for one of the data model's reasons.
INELIGIBLE_STATES: tuple[dict[str, Any], ...] = (
    {"status": "opted_out", "optedOut": True},
    {"emailStatus": "bounced_permanent", "status": "bounced", "bounceCount": 5, "isActive": False},
    {"emailStatus": "complained"},
    {"emailStatus": "unsubscribed"},
    {"status": "blocked"},
    {"isActive": False},
)


@dataclass(frozen=True)
class SeedPlan:
    users: int
    contacts_per_user: int
    seed: int = 42
    ineligible_share: float = 0.1
    default_schedule_share: float = 0.5  # users who never changed the defaults
    max_send_day: int = 28


@dataclass
class SeedReport:
    users: int = 0
    contacts: int = 0
    eligible_contacts: int = 0


# bcrypt's own base64 alphabet (./A-Za-z0-9), in which its salt and hash are written.
BCRYPT_ALPHABET = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def sample_password_hash(rng: random.Random) -> str:
    """A bcrypt-shaped `password` ("$2b$10$", 22 characters of salt, 31 of
    hash: 60 in all), as the app stores after hashing; it is the hash of no
    known password, so nobody can log in as a sample user."""
    return "$2b$10$" + "".join(rng.choice(BCRYPT_ALPHABET) for _ in range(53))


def sample_user(rng: random.Random, index: int, plan: SeedPlan, now: datetime) -> dict[str, Any]:
    """A user as the app creates one: every default of the model written out
    (Mongoose stores defaults on creation), half of them changed."""
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    preferences: dict[str, Any] = {
        "sendTime": "18:00",
        "timezone": "Europe/Paris",
        "sendDay": 5,
        "reminderSettings": {
            "firstReminder": True,
            "secondReminder": True,
            "reminderChannel": "email",
        },
        "emailTemplate": rng.choice(TONES),
    }
    if rng.random() >= plan.default_schedule_share:
        preferences.update(
            sendDay=rng.randint(1, plan.max_send_day),
            sendTime=f"{rng.randint(7, 21):02d}:{rng.choice((0, 15, 30, 45)):02d}",
            timezone=rng.choice(TIMEZONES),
        )
    if rng.random() < 0.3:
        preferences["customMessage"] = f"Hâte de vous lire, {first} !"
    created = now - timedelta(days=400)
    return {
        "username": f"{first.lower()}{index}"[:30],
        "email": f"user{index}@example.org",
        "password": sample_password_hash(rng),
        "role": "user",
        "profile": {"firstName": first, "lastName": last},
        "metadata": {"isActive": True, "lastActive": now - timedelta(days=rng.randint(0, 30))},
        "preferences": preferences,
        "statistics": {
            "totalContacts": plan.contacts_per_user,
            "joinedCycles": 0,
            "totalSubmissions": 0,
        },
        "createdAt": created,
        "updatedAt": now - timedelta(days=rng.randint(0, 30)),
        "__v": 0,
    }


def sample_contact(rng: random.Random, owner_id: Any, email: str, now: datetime) -> dict[str, Any]:
    """An eligible contact as the app creates one, every default written out."""
    return {
        "ownerId": owner_id,
        "email": email,
        "firstName": rng.choice(FIRST_NAMES),
        "lastName": rng.choice(LAST_NAMES),
        "status": rng.choice(("active", "pending")),
        "emailStatus": "active",
        "bounceCount": 0,
        "optedOut": False,
        "isActive": True,
        "tracking": {"invitationsSent": 0, "responsesReceived": 0, "responseRate": 0},
        "createdAt": now - timedelta(days=300),
        "updatedAt": now - timedelta(days=30),
        "__v": 0,
    }


def _contacts(
    rng: random.Random, owner: dict[str, Any], index: int, plan: SeedPlan, now: datetime
) -> Iterator[dict[str, Any]]:
    for number in range(plan.contacts_per_user):
        doc = sample_contact(rng, owner["_id"], f"contact{number}.user{index}@example.net", now)
        if rng.random() < plan.ineligible_share:
            doc.update(rng.choice(INELIGIBLE_STATES))
        yield doc


def seed(store: Store, plan: SeedPlan, now: datetime, batch: int = 1000) -> SeedReport:
    """Insert `plan.users` users and their contacts; returns what was written.

    Users go in first, a batch at a time (the insert gives them their `_id`),
    then their contacts, so at most one batch is in memory.
    """
    rng = random.Random(plan.seed)
    report = SeedReport()
    users_per_batch = max(1, batch // max(1, plan.contacts_per_user))
    for start in range(0, plan.users, users_per_batch):
        users = [
            sample_user(rng, i, plan, now)
            for i in range(start, min(plan.users, start + users_per_batch))
        ]
        report.users += store.insert_documents("users", users)  # assigns each user's _id
        contacts = [
            contact
            for offset, user in enumerate(users)
            for contact in _contacts(rng, user, start + offset, plan, now)
        ]
        report.eligible_contacts += sum(contact_skip_reason(c) is None for c in contacts)
        report.contacts += store.insert_documents("contacts", contacts)
    return report

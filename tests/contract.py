"""The app's data contract (../shared/spec/data-model.md) as checks: what a
document of `users`, `contacts` or `invitations` must be for the app's own
Mongoose models to accept it, and the derived fields kept true.

Each `*_violations(doc)` returns one line per broken rule (empty: the
document passes). Fields the app does not know are violations too: the
scheduler writes only the model's fields (`metadata.lastMonthlyJobRun`, which
the data model lists, excepted).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bson import ObjectId

Rule = Callable[[Any], bool]

_TIME = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
_TOKEN = re.compile(r"^[0-9a-f]{64}$")
_SHORT_CODE = re.compile(r"^[A-Z0-9]{6}$")
_BCRYPT = re.compile(r"^\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}$")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _counter(value: Any) -> bool:
    return _is_int(value) and value >= 0


def _date(value: Any) -> bool:
    return isinstance(value, datetime)


def _bool(value: Any) -> bool:
    return isinstance(value, bool)


def _text(limit: int | None = None) -> Rule:
    return lambda value: isinstance(value, str) and (limit is None or len(value) <= limit)


def _one_of(*allowed: str) -> Rule:
    return lambda value: value in allowed


def _lower_email(value: Any) -> bool:
    return isinstance(value, str) and "@" in value and value == value.strip().lower()


def _zone(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _matches(pattern: re.Pattern[str]) -> Rule:
    return lambda value: isinstance(value, str) and pattern.match(value) is not None


def _object_id(value: Any) -> bool:
    return isinstance(value, ObjectId)


def _check(doc: Any, fields: dict[str, Rule], required: tuple[str, ...], where: str) -> list[str]:
    if not isinstance(doc, dict):
        return [f"{where}: not a sub-document ({doc!r})"]
    problems = [f"{where}{name}: required" for name in required if name not in doc]
    for name, value in doc.items():
        rule = fields.get(name)
        if rule is None:
            problems.append(f"{where}{name}: not a field of the app's model")
        elif not rule(value):
            problems.append(f"{where}{name}: {value!r} is not valid")
    return problems


def _nested(fields: dict[str, Rule], required: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"fields": fields, "required": required}


def _validate(doc: dict[str, Any], top: dict[str, Any], required: tuple[str, ...]) -> list[str]:
    plain = {name: rule for name, rule in top.items() if callable(rule)}
    nested = {name: spec for name, spec in top.items() if not callable(spec)}
    flat = {name: value for name, value in doc.items() if name not in nested}
    problems = _check(flat, plain, required, "")
    for name, spec in nested.items():
        if name in doc:
            problems += _check(doc[name], spec["fields"], spec["required"], f"{name}.")
    return problems


USER = {
    "_id": _object_id,
    "username": lambda v: isinstance(v, str) and 3 <= len(v) <= 30,
    "email": _lower_email,
    "password": lambda v: isinstance(v, str) and len(v) >= 6,
    "role": _one_of("user", "admin"),
    "profile": _nested({"firstName": _text(), "lastName": _text()}),
    "metadata": _nested({"isActive": _bool, "lastActive": _date, "lastMonthlyJobRun": _date}),
    "preferences": _nested(
        {
            "sendTime": _matches(_TIME),
            "timezone": _zone,
            "sendDay": lambda v: _is_int(v) and 1 <= v <= 28,
            "optedOut": _bool,
            "reminderSettings": lambda v: (
                not _check(
                    v,
                    {
                        "firstReminder": _bool,
                        "secondReminder": _bool,
                        "reminderChannel": _one_of("email", "sms", "push"),
                    },
                    (),
                    "",
                )
            ),
            "emailTemplate": _one_of("friendly", "professional", "fun"),
            "customMessage": _text(500),
        }
    ),
    "statistics": _nested(
        {"totalContacts": _counter, "joinedCycles": _counter, "totalSubmissions": _counter}
    ),
    "createdAt": _date,
    "updatedAt": _date,
    "__v": _counter,
}

EMAIL_STATUSES = (
    "active",
    "sent",
    "delivered",
    "bounced_temporary",
    "bounced_permanent",
    "complained",
    "unsubscribed",
)

CONTACT = {
    "_id": _object_id,
    "ownerId": _object_id,
    "email": _lower_email,
    "firstName": _text(100),
    "lastName": _text(100),
    "contactUserId": _object_id,
    "status": _one_of("pending", "active", "opted_out", "bounced", "blocked"),
    "emailStatus": _one_of(*EMAIL_STATUSES),
    "bounceCount": _counter,
    "lastBounceAt": _date,
    "bounceReason": _text(),
    "optedOut": _bool,
    "isActive": _bool,
    "tracking": _nested(
        {
            "lastSentAt": _date,
            "invitationsSent": _counter,
            "responsesReceived": _counter,
            "responseRate": lambda v: _is_int(v) and 0 <= v <= 100,
        }
    ),
    "createdAt": _date,
    "updatedAt": _date,
    "__v": _counter,
}

# A reminder the app pushes through Mongoose also has its sub-document _id.
REMINDER = {
    "_id": _object_id,
    "type": _one_of("first", "second", "final"),
    "sentAt": _date,
    "opened": _bool,
}

INVITATION = {
    "_id": _object_id,
    "fromUserId": _object_id,
    "toEmail": _lower_email,
    "toUserId": _object_id,
    "month": _matches(_MONTH),
    "token": _matches(_TOKEN),
    "shortCode": _matches(_SHORT_CODE),
    "type": _one_of("user", "external"),
    "status": _one_of(
        "queued", "sent", "opened", "started", "submitted", "expired", "bounced", "cancelled"
    ),
    "tracking": _nested(
        {
            "createdAt": _date,
            "sentAt": _date,
            "openedAt": _date,
            "startedAt": _date,
            "submittedAt": _date,
            "emailProvider": _text(),
            "bounceReason": _text(),
        }
    ),
    "reminders": lambda v: (
        isinstance(v, list) and all(not _check(r, REMINDER, ("type", "sentAt"), "") for r in v)
    ),
    "expiresAt": _date,
    "submissionId": _object_id,
    "metadata": _nested(
        {
            "template": _text(),
            "customMessage": _text(),
            "priority": _one_of("low", "normal", "high"),
        }
    ),
    "createdAt": _date,
    "updatedAt": _date,
    "__v": _counter,
}


def app_response_rate(responses: int, sent: int) -> int:
    """`Math.round(responsesReceived / invitationsSent * 100)`: halves go up."""
    return math.floor(responses / sent * 100 + 0.5)


def user_violations(doc: dict[str, Any]) -> list[str]:
    problems = _validate(doc, USER, ("_id", "username", "email", "password"))
    if isinstance(doc.get("password"), str) and not _BCRYPT.match(doc["password"]):
        problems.append("password: not a bcrypt hash, which the app stores")
    return problems


def contact_violations(doc: dict[str, Any]) -> list[str]:
    problems = _validate(doc, CONTACT, ("_id", "ownerId", "email"))
    tracking = doc.get("tracking")
    if isinstance(tracking, dict) and _counter(tracking.get("invitationsSent", 0)):
        sent = tracking.get("invitationsSent", 0)
        responses = tracking.get("responsesReceived", 0)
        rate = tracking.get("responseRate", 0)
        if sent > 0 and _counter(responses) and rate != app_response_rate(responses, sent):
            problems.append(
                f"tracking.responseRate: {rate}, the app computes "
                f"{app_response_rate(responses, sent)} from {responses}/{sent}"
            )
    return problems


def invitation_violations(doc: dict[str, Any]) -> list[str]:
    problems = _validate(doc, INVITATION, ("_id", "fromUserId", "toEmail", "month", "token"))
    expected_type = "user" if "toUserId" in doc else "external"
    if doc.get("type", "external") != expected_type:
        problems.append(
            f"type: {doc.get('type')!r} with toUserId {'set' if 'toUserId' in doc else 'unset'}"
        )
    return problems


VALIDATORS: dict[str, Callable[[dict[str, Any]], list[str]]] = {
    "users": user_violations,
    "contacts": contact_violations,
    "invitations": invitation_violations,
}


def violations(db: Any) -> list[str]:
    """Every broken rule in the app's three collections, one line each."""
    found = []
    for collection, validate in VALIDATORS.items():
        for doc in db[collection].find():
            found += [f"{collection} {doc.get('_id')}: {problem}" for problem in validate(doc)]
    return found

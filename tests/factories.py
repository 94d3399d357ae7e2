"""Documents shaped like the Form-a-Friend app's (data-model.md), with only
the fields a test names; everything else is left out, as the app may do."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bson import ObjectId

from formafriend_scheduler.config import load_settings
from formafriend_scheduler.store import Store, connect


def user(**fields: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"_id": ObjectId(), "username": f"user{ObjectId()}"[:30]}
    doc["email"] = f"{doc['username']}@example.org"
    doc.update(fields)
    return doc


def contact(owner_id: ObjectId, email: str, **fields: Any) -> dict[str, Any]:
    return {"_id": ObjectId(), "ownerId": owner_id, "email": email, **fields}


def invitation(
    from_user_id: ObjectId, to_email: str, month: str, *, expires_at: datetime, **fields: Any
) -> dict[str, Any]:
    return {
        "_id": ObjectId(),
        "fromUserId": from_user_id,
        "toEmail": to_email,
        "month": month,
        "token": ObjectId().binary.hex() + "0" * 40,
        "expiresAt": expires_at,
        **fields,
    }


def one_user_with_contacts(mongodb_uri: str, contacts: int = 3) -> Store:
    """alice@x.org with contacts c0@x.org, c1@x.org, ...: the smallest mailing."""
    store = connect(load_settings(mongodb_uri=mongodb_uri))
    owner = {"_id": ObjectId(), "username": "alice", "email": "alice@x.org"}
    store.db["users"].insert_one(owner)
    store.db["contacts"].insert_many(
        [{"ownerId": owner["_id"], "email": f"c{i}@x.org"} for i in range(contacts)]
    )
    return store

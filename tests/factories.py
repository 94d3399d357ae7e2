"""Documents shaped like the Form-a-Friend app's (data-model.md), with only
the fields a test names; everything else is left out, as the app may do."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bson import ObjectId


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

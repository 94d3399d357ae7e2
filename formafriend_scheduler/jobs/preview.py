"""`preview`: the message that would go out, composed by the run's own
composer after its override templates pass the check; from the sample
values, or, for `--user ID --contact EMAIL`, from the database exactly as a
run would build it, reading only.

The contact's invitation (for an invitation, the current month's; for a
reminder, the latest) gives the token, month and expiry when it exists;
otherwise an invitation is shaped as the monthly run would create it, and
never inserted.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from formafriend_scheduler.config import Settings
from formafriend_scheduler.eligibility import Month
from formafriend_scheduler.errors import NotFound, TemplateProblems
from formafriend_scheduler.jobs.letters import letter_for
from formafriend_scheduler.jobs.mailing import defaults_of
from formafriend_scheduler.jobs.monthly_worker import monthly_invitation
from formafriend_scheduler.mail.compose import DEFAULT_TONE, Composer, Kind, Letter
from formafriend_scheduler.mail.preview import Preview, check_templates, sample_letter
from formafriend_scheduler.mail.setup import composer_for
from formafriend_scheduler.reminder_rules import days_left
from formafriend_scheduler.store import Store
from formafriend_scheduler.store.users import parse_user_id


def letter_from_database(
    store: Store, settings: Settings, kind: Kind, user_id: str, contact_email: str, now: datetime
) -> Letter:
    try:
        owner_id = parse_user_id(user_id)
    except ValueError as error:
        raise NotFound(str(error)) from None
    users = store.users.load([owner_id])
    if not users:
        raise NotFound(f"no user {user_id} in {store.database_name}")
    sender = users[0]
    email = contact_email.strip().lower()
    contact = store.contacts.by_owner_and_email({(owner_id, email)}).get((owner_id, email))
    if contact is None:
        raise NotFound(f"user {user_id} has no contact {email}")
    month = Month.containing(now, settings.zone)
    # An invitation: this month's. A reminder: the latest invitation, which
    # may be last month's (J+7 after a late send day).
    invitation = store.invitations.of_recipient(
        owner_id, email, str(month) if kind == "invitation" else None
    )
    if invitation is None:
        lifetime = timedelta(days=settings.invitation_expiry_days)
        invitation = monthly_invitation(sender, contact, month, now, lifetime)
    return letter_for(
        kind,
        invitation,
        sender,
        contact,
        defaults_of(settings),
        days_left=days_left(invitation, now) if kind != "invitation" else None,
    )


def checked_composer(settings: Settings, now: datetime) -> Composer:
    """The run's composer, after its override templates passed the check
    (TemplateProblems names each file that fails)."""
    composer = composer_for(settings)
    if settings.email_templates_dir is not None:
        problems = check_templates(composer, settings.email_templates_dir, now)
        if problems:
            raise TemplateProblems([str(problem) for problem in problems])
    return composer


def preview(
    settings: Settings,
    kind: Kind,
    now: datetime,
    *,
    tone: str | None = None,
    store: Store | None = None,
    user_id: str | None = None,
    contact_email: str | None = None,
) -> Preview:
    """The message that would go out: from the database for a user and
    contact (a store given), else from the sample values; `tone` overrides."""
    composer = checked_composer(settings, now)
    if store is not None and user_id is not None and contact_email is not None:
        letter = letter_from_database(store, settings, kind, user_id, contact_email, now)
    else:
        letter = sample_letter(kind, tone or DEFAULT_TONE, now, settings.zone)
    if tone is not None:
        letter = replace(letter, tone=tone)
    return Preview.of(composer, letter, now)

"""The customer of an owner (a user): ``Customer.objects.for_owner(user)``.

Returns the owner's live customer; else, for an unlinked customer with the owner's email, does
what ``OWNER_EMAIL_MATCH`` says (``EmailMatch``: refuse, the default; link a unique match; or
ignore it); else creates one, which the save pushes to Stripe as any new row. It never makes a
second customer for an owner, even when two requests of one user run at once: the database
holds at most one live customer per owner (a unique constraint), so of two inserts one fails,
and that one returns the row the other made. No lock is taken in Python, and a link is one
conditional ``UPDATE`` (``user IS NULL``), so two owners cannot both take one unlinked customer.

By default a customer with the owner's email is an error, not a reason to create a second
customer with that email in Stripe, nor one to link: linking by email hands a person the
customer (and saved cards) of whoever owns the address, safe only where emails are verified.
The message says how to link it by hand, or to link or create anyway.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from typing import TYPE_CHECKING, Any, Final

from django.db import IntegrityError, models, transaction

from .accounts import Account, default_livemode, default_stripe_account
from .conf import get_setting

if TYPE_CHECKING:
    from .models import Customer

#: Tries before giving up when concurrent requests keep changing the answer (never seen past 2).
ATTEMPTS: Final = 5


class EmailMatch(str, Enum):
    """What ``for_owner`` does with unlinked customers that have the owner's email."""

    REFUSE = "refuse"  # raise OwnerLinkError naming them (the default)
    LINK = "link"  # link the one match (several: OwnerLinkError)
    IGNORE = "ignore"  # create a customer for the owner beside them


class OwnerLinkError(Exception):
    """The owner's customer cannot be chosen without a person: what was found and what to do."""


def owner_email(owner: models.Model) -> str:
    """The owner's email, by the user model's ``EMAIL_FIELD`` (empty when it has none)."""
    field = getattr(type(owner), "EMAIL_FIELD", "email")
    return str(getattr(owner, field, "") or "").strip()


def owner_name(owner: models.Model) -> str:
    full_name = getattr(owner, "get_full_name", None)
    return str(full_name() or "").strip() if callable(full_name) else ""


def customer_for_owner(
    model: type[Customer],
    owner: Any,
    *,
    defaults: Mapping[str, Any] | None = None,
    email_match: EmailMatch | str | None = None,
    using: str | None = None,
    account: Account | None = None,
) -> tuple[Customer, bool]:
    """``(customer, created)``: see the module docstring. ``defaults`` are the attributes of a
    customer made here (the owner's email and full name unless given); ``email_match``
    overrides the setting ``OWNER_EMAIL_MATCH`` for this call. One live customer per owner in
    each account and mode: ``account`` says which (by default, the default account)."""
    if owner.pk is None:
        raise ValueError("for_owner(): the owner must be saved first (it has no primary key).")
    match = EmailMatch(get_setting("OWNER_EMAIL_MATCH") if email_match is None else email_match)
    where = (
        account.rows
        if account is not None
        else {"stripe_account": default_stripe_account(), "livemode": default_livemode()}
    )
    live = model._default_manager.db_manager(using).filter(deleted=False, **where)
    for _ in range(ATTEMPTS):
        found = live.filter(user=owner).first()
        if found is not None:
            return found, False
        email = owner_email(owner)
        if email and match is not EmailMatch.IGNORE:
            candidates = list(
                live.filter(user__isnull=True, email__iexact=email).order_by("pk")[:10]
            )
            if candidates:
                if match is EmailMatch.REFUSE or len(candidates) > 1:
                    raise OwnerLinkError(_unlinked_message(owner, email, candidates))
                linked = _link(live, candidates[0].pk, owner)
                if linked is not None:
                    return linked, False
                continue  # linked to someone else meanwhile, or the owner got one: look again
        created = _create(model, owner, email, {**where, **(defaults or {})}, using)
        if created is not None:
            return created, True
    raise OwnerLinkError(
        f"for_owner(): the customer of {owner!r} kept changing while it was being chosen "
        f"({ATTEMPTS} tries); try again."
    )


def _link(live: models.QuerySet[Customer], pk: int, owner: Any) -> Customer | None:
    try:
        with transaction.atomic(using=live.db):
            taken = live.filter(pk=pk, user__isnull=True).update(user=owner)
    except IntegrityError:  # the owner was given another customer meanwhile
        return None
    return live.get(pk=pk) if taken else None


def _create(
    model: type[Customer],
    owner: Any,
    email: str,
    defaults: Mapping[str, Any],
    using: str | None,
) -> Customer | None:
    values = {"email": email or None, "name": owner_name(owner) or None, **defaults}
    customer = model(user=owner, **values)
    customer.requested_edit()  # bad defaults are refused here, naming the field, not pushed
    try:
        with transaction.atomic(using=using):
            customer.save(using=using)
    except IntegrityError:  # another request made the owner's customer first
        return None
    return customer


def _unlinked_message(owner: models.Model, email: str, candidates: list[Customer]) -> str:
    rows = ", ".join(
        f"pk {customer.pk}" + (f" ({customer.stripe_id})" if customer.stripe_id else "")
        for customer in candidates
    )
    if len(candidates) > 1:
        why = f"{len(candidates)} unlinked customers have the email {email!r} ({rows})"
        fix = "link the right one by hand (customer.user = owner; customer.save())"
    else:
        why = f"an unlinked customer has the email {email!r} ({rows})"
        fix = (
            "link it by hand (customer.user = owner; customer.save()), or, only where emails "
            "are verified, link by email (STRIPE_CUSTOMERS['OWNER_EMAIL_MATCH'] = 'link', or "
            "for_owner(owner, email_match='link'))"
        )
    return (
        f"for_owner(): {owner!r} has no customer and {why}. Not to make a second Stripe "
        f"customer for one person, {fix}; or pass email_match='ignore' to create one anyway."
    )

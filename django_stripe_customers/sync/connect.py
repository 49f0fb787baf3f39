"""Stripe Connect: which accounts a pull covers, the platform's connected accounts as Stripe
lists them, and an account whose access ended.

The settings name accounts (``accounts``); a key with ``CONNECTED: "all"`` mirrors every
account connected to its platform, listed from ``GET /v1/accounts`` when a pull of every
account starts (and recorded as ``StripeAccount`` rows). ``account.application.deauthorized``
ends the platform's access to an account: its rows are kept (not deleted), flagged, and not
pushed to again; a later listing that shows it connected again lifts that.
"""

from __future__ import annotations

from typing import Final

from django.db import transaction
from django.utils import timezone

from ..accounts import Account, KeyEntry, entries, find
from ..bookkeeping import SyncStatus
from ..models import Customer, StripeAccount

#: Stripe's list of the platform's connected accounts.
ACCOUNTS_PATH: Final = "/v1/accounts"
#: The event that ends a platform's access to a connected account.
DEAUTHORIZED_EVENT: Final = "account.application.deauthorized"


def every_account(*, livemode: bool | None = None) -> list[Account]:
    """Every account to pull (of one mode when given): the settings' accounts, then each
    ``all`` key's connected accounts as Stripe lists them now; none whose access ended."""
    found: dict[Account, None] = {}
    for entry in entries():
        if livemode is not None and entry.livemode != livemode:
            continue
        found.update(dict.fromkeys(entry.listed()))
        if entry.all_connected:
            found.update(dict.fromkeys(list_connected(entry)))
    return [account for account in found if not is_deauthorized(account)]


def list_connected(entry: KeyEntry) -> list[Account]:
    """The platform's connected accounts (``GET /v1/accounts``, page by page), recorded as
    listed now; one listed again is connected again."""
    client = entry.own_account.client()
    ids: list[str] = []
    for page in client.iter_pages(ACCOUNTS_PATH, {"limit": 100}):
        ids.extend(str(obj["id"]) for obj in page)
    now = timezone.now()
    for stripe_account in ids:
        StripeAccount.objects.update_or_create(
            stripe_account=stripe_account,
            livemode=entry.livemode,
            defaults={"connected": True, "listed_at": now, "deauthorized_at": None},
        )
    return [entry.connected_account(stripe_account) for stripe_account in ids]


def named_account(stripe_account: str | None, livemode: bool | None) -> Account:
    """The account an operator names (``--account``): in ``livemode``'s mode, or the mode of
    the first key that reaches it. Raises ``accounts.UnknownAccount``."""
    if livemode is not None:
        return find(stripe_account, livemode)
    modes = dict.fromkeys(entry.livemode for entry in entries())
    for mode in modes:
        try:
            return find(stripe_account, mode)
        except ValueError:
            continue
    return find(stripe_account, next(iter(modes)))


def is_deauthorized(account: Account) -> bool:
    return StripeAccount.objects.filter(**account.rows, deauthorized_at__isnull=False).exists()


def deauthorization_message(account: Account) -> str:
    return (
        f"{account} disconnected from the platform (account.application.deauthorized): "
        "its rows are kept and no longer pushed. Reconnect it to sync again."
    )


def deauthorize(account: Account) -> int:
    """Record that the platform lost access to ``account`` and flag its rows: kept as they
    are, their pending edits failed with the reason (not sent). Returns the rows flagged."""
    message = deauthorization_message(account)
    with transaction.atomic():
        StripeAccount.objects.update_or_create(
            **account.rows, defaults={"connected": True, "deauthorized_at": timezone.now()}
        )
        rows = Customer.objects.filter(**account.rows)
        rows.filter(sync_status=SyncStatus.PENDING).update(sync_status=SyncStatus.FAILED)
        return rows.write_from_stripe(sync_error=message, next_attempt_at=None)

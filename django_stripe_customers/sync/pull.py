"""Stripe -> database: map one object, apply it to its row, reconcile one id.

Pulling writes with ``write_from_stripe`` and ``bulk_create`` of synced rows, which mark
nothing pending, so nothing pulled is ever pushed back to Stripe (no echo). Fields with
unpushed local edits are kept (the three-way ``merge``). Data older than what the row holds is
not applied, and data whose order against the row cannot be told is retrieved again
(``freshness``). The whole list, page by page, is ``pages``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from enum import Enum
from typing import Any, Final

from django.db import transaction
from django.utils import timezone as django_timezone

from .. import schema
from ..accounts import Account, default_account, find
from ..conf import get_setting
from ..deletion import erase_if_configured
from ..descriptions import CUSTOMERS
from ..mirror import fields_from_stripe, is_deleted
from ..models import ACCOUNT_FIELDS, Customer, SyncStatus
from ..stripe import InvalidRequestError, StripeClient, observed_at, sent_at
from .freshness import Verdict, as_datetime, judge, newest
from .merge import merge

#: How often a customer whose order against its row cannot be told is retrieved again.
MAX_REREADS: Final = 3
#: ``seen`` of a first read (not a re-read).
NOT_A_REREAD: Final = object()


def merged_values(customer: Customer | None, obj: dict[str, Any]) -> dict[str, Any]:
    """The row's new values for ``obj``: the remote data, three-way merged with unpushed local
    edits when the row is pending (see ``merge``)."""
    remote = fields_from_stripe(obj)
    if customer is None or customer.sync_status != SyncStatus.PENDING:
        return remote
    local = {name: getattr(customer, name) for name in schema.PUSHABLE}
    base = fields_from_stripe(customer.stripe_data or {})
    return merge(local, base, remote, schema.PUSHABLE)


def is_unchanged(customer: Customer, obj: dict[str, Any], values: dict[str, Any]) -> bool:
    return (
        customer.stripe_data == obj
        and not customer.deleted
        and not customer.sync_error
        and all(getattr(customer, name) == value for name, value in values.items())
    )


def status_after_pull(customer: Customer | None) -> str:
    pending = customer is not None and customer.sync_status == SyncStatus.PENDING
    return SyncStatus.PENDING if pending else SyncStatus.SYNCED


@dataclass(frozen=True)
class Fetched:
    """When remote data was Stripe's state (its clock) and when we asked for it (ours)."""

    observed: datetime | None = None
    sent: datetime | None = None

    @classmethod
    def of(cls, answer: object) -> Fetched:
        """The times of an answer of the client (a ``StripeObject`` or ``PageData``)."""
        sent = sent_at(answer)
        return cls(as_datetime(observed_at(answer)), None if sent is None else _utc(sent))


def _utc(unix_time: float) -> datetime:
    return datetime.fromtimestamp(unix_time, tz=timezone.utc)


def verdict_for(customer: Customer, obj: dict[str, Any], fetched: Fetched, seen: object) -> Verdict:
    """``judge`` for a locked row. ``seen`` is the row's ``synced_at`` when a re-read was sent
    (or ``NOT_A_REREAD``): if nothing was written since, the re-read is the newer view."""
    if seen is not NOT_A_REREAD and customer.synced_at == seen and not customer.deleted:
        return Verdict.APPLY
    return judge(
        obj,
        fetched.observed,
        sent_at=fetched.sent,
        row_deleted=customer.deleted,
        row_observed_at=customer.remote_updated_at,
        row_written_at=customer.synced_at,
        row_snapshot=customer.stripe_data,
    )


class Applied(str, Enum):
    """What applying one Stripe object to its row did (a ``str``, as the counts name it)."""

    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    DELETED = "deleted"
    STALE = Verdict.STALE.value  # the row holds newer data: nothing written
    REREAD = Verdict.REREAD.value  # the same second, other data: retrieve it again
    ELSEWHERE = "elsewhere"  # the id is a row of another account or mode: nothing written

    def __str__(self) -> str:
        return self.value


def apply_customer(
    obj: dict[str, Any],
    fetched: Fetched = Fetched(),
    *,
    account: Account,
    seen: object = NOT_A_REREAD,
    tombstone: bool = False,
) -> tuple[Customer | None, Applied]:
    """Apply one Stripe customer object of ``account`` (``fetched``: when it was Stripe's
    state) to its row; a row of that id in another account or mode is not touched
    (``elsewhere``).

    Returns (row, outcome): ``created``, ``updated``, ``unchanged``, ``deleted``, ``stale``
    (the row holds newer data: nothing written) or ``reread`` (same second, different data:
    retrieve it again and pass the row's ``synced_at`` as ``seen``). A deleted object flags the
    row (its last data is kept); a deleted object with no row is ignored (``None``), or, with
    ``tombstone`` (a ``customer.deleted`` event, which may come before ``customer.created``),
    leaves a deleted row, so that no later event of that customer makes it live.
    """
    stripe_id = obj["id"]
    now = django_timezone.now()
    with transaction.atomic():
        customer = Customer.objects.select_for_update().filter(stripe_id=stripe_id).first()
        if customer is not None and not in_account(customer, account):
            return customer, Applied.ELSEWHERE
        if customer is not None:
            verdict = verdict_for(customer, obj, fetched, seen)
            if verdict is not Verdict.APPLY:
                return customer, Applied(verdict.value)
        remote_at = newest(customer.remote_updated_at if customer else None, fetched.observed)
        if is_deleted(obj):
            if customer is None and tombstone:
                (customer,) = Customer.objects.bulk_create(
                    [
                        Customer(
                            stripe_id=stripe_id,
                            **account.rows,
                            deleted=True,
                            stripe_data=dict(obj),
                            sync_status=SyncStatus.SYNCED,
                            synced_at=now,
                            remote_updated_at=remote_at,
                        )
                    ]
                )
                return customer, Applied.DELETED
            if customer is None or customer.deleted:
                return customer, Applied.UNCHANGED
            Customer.objects.filter(pk=customer.pk).update(
                deleted=True, sync_error="", synced_at=now, remote_updated_at=remote_at
            )
            erase_if_configured(Customer.objects.filter(pk=customer.pk))
            customer.refresh_from_db()
            return customer, Applied.DELETED
        values = merged_values(customer, obj)
        if customer is not None and is_unchanged(customer, obj, values):
            if remote_at != customer.remote_updated_at:  # later events of older data: stale
                Customer.objects.filter(pk=customer.pk).update(remote_updated_at=remote_at)
            return customer, Applied.UNCHANGED
        bookkeeping = {
            "stripe_data": obj,
            "sync_status": status_after_pull(customer),
            "sync_error": "",
            "synced_at": now,
            "remote_updated_at": remote_at,
        }
        if customer is None:
            (customer,) = Customer.objects.bulk_create(
                [Customer(stripe_id=stripe_id, **{**values, **account.rows}, **bookkeeping)]
            )
            return customer, Applied.CREATED
        Customer.objects.filter(pk=customer.pk).write_from_stripe(**values, **bookkeeping)
        customer.refresh_from_db()
        return customer, Applied.UPDATED


def pull_customer(
    stripe_id: str, *, account: Account | None = None, client: StripeClient | None = None
) -> Customer | None:
    """Retrieve one customer from Stripe and apply it to its row (created if needed).

    ``account``: where to ask; by default the row's own account, or (no row yet) the default
    account. A 404 is not a deletion (Stripe answers deleted customers with ``deleted: true``):
    it means another account or mode. The error is recorded on the row, nothing else changes,
    and the ``InvalidRequestError`` is raised again for the caller.
    """
    if account is None:
        account = account_of_row(stripe_id)
    return reread(stripe_id, NOT_A_REREAD, account=account.through(client)).customer


def account_of_row(stripe_id: str) -> Account:
    """The account of the row of ``stripe_id`` (``UnknownAccount`` when no key reaches it),
    or the default account when there is no such row."""
    found = Customer.objects.filter(stripe_id=stripe_id).values_list(*ACCOUNT_FIELDS).first()
    return default_account() if found is None else find(*found)


def in_account(customer: Customer, account: Account) -> bool:
    return (customer.stripe_account, customer.livemode) == (
        account.stripe_account,
        account.livemode,
    )


@dataclass(frozen=True)
class Reread:
    customer: Customer | None
    outcome: Applied
    requests: int


def reread(stripe_id: str, seen: object, *, account: Account) -> Reread:
    """Retrieve a customer and apply it; while its order against the row cannot be told,
    retrieve it again (each retrieve is sent after the row's last write was seen, so it is the
    newer view). Raises as ``pull_customer`` does."""
    customer: Customer | None = None
    client = account.client()
    for attempt in range(1, MAX_REREADS + 1):
        try:
            obj = CUSTOMERS.endpoints(client).retrieve(stripe_id, expand=expansions())
        except InvalidRequestError as exc:
            if exc.http_status == 404:
                rows = Customer.objects.filter(stripe_id=stripe_id, **account.rows)
                rows.update(sync_error=not_found(stripe_id, account))
            raise
        customer, outcome = apply_customer(obj, Fetched.of(obj), account=account, seen=seen)
        if outcome is not Applied.REREAD:
            return Reread(customer, outcome, attempt)
        assert customer is not None
        seen = customer.synced_at
    return Reread(customer, Applied.STALE, MAX_REREADS)  # written each time: as new as Stripe


def expansions(prefix: str = "") -> list[str]:
    """The ``expand[]`` a pull asks for (setting ``PULL_EXPAND``), e.g. with ``data.`` for lists."""
    return [f"{prefix}{name}" for name in get_setting("PULL_EXPAND")]


def not_found(stripe_id: str, account: Account) -> str:
    return (
        f"Stripe has no customer {stripe_id} in {account} (404). It was not deleted "
        "(Stripe reports deleted customers as such): check that the key is for the account and "
        "mode (test or live) this customer belongs to."
    )

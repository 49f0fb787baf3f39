"""Database -> Stripe: send the request a row's edits call for (``edits``), apply the answer.

A push runs in three steps so no database lock or transaction is held during the HTTP call:
1. lock the row, compute the request (or take the one already in flight), record it on the row
   as ``push_intent`` with its Idempotency-Key, commit;
2. send it (the client retries transient failures with the same key);
3. lock the row again and apply Stripe's answer; edits saved meanwhile keep the row pending.
A push that dies after step 1 resends the recorded request with the same key, so Stripe replays
its first answer instead of creating or applying twice.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.dispatch import Signal
from django.utils import timezone

from .. import schema
from ..accounts import Account, UnknownAccount, find
from ..conf import get_setting
from ..deletion import erase_if_configured
from ..descriptions import CUSTOMERS
from ..edits import check_one_shot
from ..mirror import fields_from_stripe, is_deleted
from ..models import ACCOUNT_FIELDS, Customer, SyncStatus
from ..stripe import InvalidRequestError, StripeClient, StripeError
from .connect import deauthorization_message, is_deauthorized
from .freshness import Verdict, newest
from .merge import merge
from .outbox import intent_lease, owner_is_gone, this_process, unsent_params
from .pull import NOT_A_REREAD, Fetched, reread, verdict_for
from .push_messages import describe, describe_transient, validation_message

logger = logging.getLogger("django_stripe_customers.push")

#: Sent when Stripe took a push (sender ``Customer``; ``customer``, ``created``), and when it
#: refused one (``customer``, ``error``). Public as ``django_stripe_customers.signals``.
customer_pushed = Signal()
customer_push_failed = Signal()


class PushOutcome(str, Enum):
    """What a push did (a ``str``: the value is what tasks return and commands print)."""

    CREATED = "created"
    UPDATED = "updated"
    DELETED = "deleted"  # Stripe deleted the customer (asked here, or found deleted there)
    UNCHANGED = "unchanged"  # nothing to send
    IN_FLIGHT = "in_flight"  # another push holds the request
    TAKEN_OVER = "taken_over"  # another push took the request over and applied its answer
    SKIPPED = "skipped"  # not sent: the customer is deleted in Stripe
    FAILED = "failed"  # Stripe refused it, or it cannot be sent: the row says why

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class PushResult:
    """What ``push_customer`` did to one row."""

    outcome: PushOutcome
    customer_pk: int
    still_pending: bool = False
    error: str = ""


def push_customer(
    customer_or_pk: Customer | int, *, client: StripeClient | None = None, owner: str = ""
) -> PushResult:
    """Send a row's unpushed edits to Stripe, to its own account and mode (with the key that
    reaches them, through ``client`` if given); see the module docstring for the three steps.

    ``still_pending`` in the result says the row was edited meanwhile: the caller runs it
    again (the tasks do).

    ``owner`` identifies this attempt (the Celery task id, stable across its retries), so a
    retry takes back its own in-flight request while another push waits for it. Transient
    Stripe errors are raised (the request stays recorded, to be resent with the same key);
    permanent ones mark the row ``failed`` and are not raised.
    """
    pk = customer_or_pk.pk if isinstance(customer_or_pk, Customer) else customer_or_pk
    owner = owner or f"direct-{uuid.uuid4()}"
    intent_or_result = _claim(pk, owner)
    if isinstance(intent_or_result, PushResult):
        return intent_or_result
    intent = intent_or_result
    try:
        account = _account(pk, intent).through(client)
    except UnknownAccount as exc:  # settings changed since the row was made: kept, not sent
        return _fail(pk, str(exc), intent)
    if is_deauthorized(account):
        return _fail(pk, deauthorization_message(account), intent)
    client = account.client()
    try:
        obj = _send(client, intent)
    except InvalidRequestError as exc:
        if exc.http_status == 404 and intent["method"] in ("update", "delete"):
            return _handle_missing(account, pk, intent, exc)
        return _fail(pk, describe(exc), intent)
    except StripeError as exc:
        if exc.is_transient:  # recorded, so the row says why it waits; the caller retries
            Customer.objects.filter(pk=pk).update(sync_error=describe_transient(exc))
            raise
        return _fail(pk, describe(exc), intent)
    if intent["method"] == "delete":
        return _apply_deletion(pk, intent, obj)
    try:
        return _apply_answer(account, pk, intent, obj)
    except MirrorConflict as exc:  # kept in flight: a retry replays the same create
        Customer.objects.filter(pk=pk).update(sync_status=SyncStatus.FAILED, sync_error=str(exc))
        logger.warning("Push of customer %s failed: %s", pk, exc)
        return PushResult(PushOutcome.FAILED, pk, error=str(exc))


def _claim(pk: int, owner: str) -> dict[str, Any] | PushResult:
    """Step 1: the request to send, recorded on the row; or why there is nothing to send."""
    now = timezone.now()
    with transaction.atomic():
        customer = Customer.objects.select_for_update().get(pk=pk)
        intent = customer.push_intent
        if intent is not None:
            leased = now - _parse(intent["claimed_at"]) < intent_lease()
            if intent["owner"] != owner and leased and not owner_is_gone(intent):
                return PushResult(PushOutcome.IN_FLIGHT, pk, still_pending=True)
            intent = {**intent, "owner": owner, "claimed_at": now.isoformat(), **this_process()}
        else:
            if customer.sync_status != SyncStatus.PENDING:
                return PushResult(PushOutcome.UNCHANGED, pk)
            if customer.delete_requested_at is not None and customer.stripe_id:
                intent = {**_deletion_intent(customer, owner, now), **_where(customer)}
                Customer.objects.filter(pk=pk).update(push_intent=intent)
                return intent
            if customer.deleted:
                return PushResult(PushOutcome.SKIPPED, pk, error="deleted in Stripe")
            try:
                edit = customer.requested_edit()
            except ValidationError as exc:
                _mark_failed(customer, validation_message(exc))
                return PushResult(PushOutcome.FAILED, pk, error=customer.sync_error)
            method, params = edit.method, edit.params
            one_shot = customer.push_params or {}
            try:  # checked at save for the request then expected; the row may be in Stripe now
                check_one_shot(one_shot, stripe_id=customer.stripe_id)
            except ValidationError as exc:
                _mark_failed(customer, validation_message(exc))
                return PushResult(PushOutcome.FAILED, pk, error=customer.sync_error)
            params = {**params, **one_shot}
            if method == "update" and not params:
                Customer.objects.filter(pk=pk).update(
                    sync_status=SyncStatus.SYNCED,
                    sync_error="",
                    next_attempt_at=None,
                    pushed_version=customer.local_version,
                    pending_since=None,
                )
                return PushResult(PushOutcome.UNCHANGED, pk)
            version = customer.local_version
            intent = {
                "method": method,
                "stripe_id": customer.stripe_id,
                "params": params,
                "one_shot": one_shot,
                # what they change (tax_ids, sources, ...) Stripe shows only when expanded
                "expand": list(get_setting("PULL_EXPAND")) if one_shot else None,
                "version": version,
                # the values this request was computed from: the merge base of step 3
                "values": {name: getattr(customer, name) for name in schema.PUSHABLE},
                "key": f"django-stripe-customers-{pk}-v{version}-{uuid.uuid4().hex[:12]}",
                **_where(customer),
                "owner": owner,
                "claimed_at": now.isoformat(),
                **this_process(),
                # the row's last remote write before the request: none since means the answer
                # is the newest view of the customer
                "synced_at": customer.synced_at.isoformat() if customer.synced_at else None,
            }
        Customer.objects.filter(pk=pk).update(push_intent=intent)
    return intent


def _where(customer: Customer) -> dict[str, Any]:
    """The account and mode the request goes to: the row's, recorded with the request."""
    return {name: getattr(customer, name) for name in ACCOUNT_FIELDS}


def _account(pk: int, intent: dict[str, Any]) -> Account:
    """The account of a recorded request (one recorded before accounts: the row's)."""
    if all(name in intent for name in ACCOUNT_FIELDS):
        return find(*(intent[name] for name in ACCOUNT_FIELDS))
    return find(*Customer.objects.filter(pk=pk).values_list(*ACCOUNT_FIELDS).get())


def _deletion_intent(customer: Customer, owner: str, now: datetime) -> dict[str, Any]:
    """The request of a deletion asked here: ``DELETE {path}/{id}``."""
    return {
        "method": "delete",
        "stripe_id": customer.stripe_id,
        "params": {},
        "version": customer.local_version,
        "key": f"django-stripe-customers-{customer.pk}-delete-{uuid.uuid4().hex[:12]}",
        "owner": owner,
        "claimed_at": now.isoformat(),
        **this_process(),
    }


def _send(client: StripeClient, intent: dict[str, Any]) -> dict[str, Any]:
    """Step 2: the HTTP call, outside any transaction."""
    key, expand = intent["key"], intent.get("expand")
    endpoints = CUSTOMERS.endpoints(client)
    if intent["method"] == "create":
        return endpoints.create(intent["params"], idempotency_key=key, expand=expand)
    if intent["method"] == "delete":
        return endpoints.delete(intent["stripe_id"], idempotency_key=key)
    return endpoints.update(
        intent["stripe_id"], intent["params"], idempotency_key=key, expand=expand
    )


def _apply_answer(
    account: Account, pk: int, intent: dict[str, Any], obj: dict[str, Any]
) -> PushResult:
    """Step 3: Stripe's answer becomes the snapshot; newer local edits stay pending.

    Only the push that holds the request applies its answer (a push that took it over may have
    applied it already). Remote data newer than the answer (an event, a pull) is kept; an
    answer that cannot be ordered against the row (the same second, a replay) is settled by
    retrieving the customer right after.
    """
    fetched = Fetched.of(obj)
    with transaction.atomic():
        customer = Customer.objects.select_for_update().get(pk=pk)
        if (customer.push_intent or {}).get("key") != intent["key"]:
            pending = customer.sync_status == SyncStatus.PENDING
            return PushResult(PushOutcome.TAKEN_OVER, pk, still_pending=pending)
        still_pending = customer.local_version > intent["version"]
        verdict = _answer_verdict(customer, intent, obj, fetched)
        if intent["method"] == "create" and _drop_mirror(pk, obj["id"]):
            verdict = Verdict.REREAD  # the mirror may have held newer data: settle it
        written: dict[str, Any] = {}
        if verdict in (Verdict.APPLY, Verdict.REREAD):
            written = fields_from_stripe(obj)
            if still_pending:  # what was edited since the request was made goes in the next push
                local = {name: getattr(customer, name) for name in schema.PUSHABLE}
                written = merge(local, intent["values"], written, schema.PUSHABLE)
            written.update(
                stripe_data=obj,
                synced_at=timezone.now(),
                remote_updated_at=newest(customer.remote_updated_at, fetched.observed),
            )
        Customer.objects.filter(pk=pk).write_from_stripe(
            **written,
            push_params=unsent_params(customer.push_params, intent.get("one_shot")),
            stripe_id=obj["id"],
            push_intent=None,
            pushed_version=intent["version"],
            sync_status=SyncStatus.PENDING if still_pending else SyncStatus.SYNCED,
            sync_error="",
            next_attempt_at=None,
            pending_since=customer.pending_since if still_pending else None,
        )
        customer.refresh_from_db()
    if verdict is Verdict.REREAD:
        _settle(account, obj["id"], customer.synced_at)
    created = intent["method"] == "create"
    customer_pushed.send(sender=Customer, customer=customer, created=created)
    outcome = PushOutcome.CREATED if created else PushOutcome.UPDATED
    return PushResult(outcome, pk, still_pending=still_pending)


def _apply_deletion(pk: int, intent: dict[str, Any], obj: dict[str, Any]) -> PushResult:
    """Stripe deleted the customer: the row stays, a tombstone with its owner link, its last
    data kept or erased as ``DELETED_KEEP_DATA`` says."""
    with transaction.atomic():
        customer = Customer.objects.select_for_update().get(pk=pk)
        if (customer.push_intent or {}).get("key") != intent["key"]:
            return PushResult(PushOutcome.TAKEN_OVER, pk)
        Customer.objects.filter(pk=pk).write_from_stripe(
            deleted=True,
            stripe_data={**(customer.stripe_data or {}), **obj, "deleted": True},
            synced_at=timezone.now(),
            push_intent=None,
            pushed_version=intent["version"],
            sync_status=SyncStatus.SYNCED,
            sync_error="",
            next_attempt_at=None,
            pending_since=None,
        )
        erase_if_configured(Customer.objects.filter(pk=pk))
        customer.refresh_from_db()
    customer_pushed.send(sender=Customer, customer=customer, created=False)
    return PushResult(PushOutcome.DELETED, pk)


def _drop_mirror(pk: int, stripe_id: str) -> bool:
    """Delete a row another path made for the customer this push just created (Stripe sent
    ``customer.created`` before its answer was stored); True if there was one.

    Such a row holds only what Stripe sent. One edited meanwhile is not thrown away: the push
    then fails, naming both rows, for a person to decide.
    """
    mirror = Customer.objects.select_for_update().filter(stripe_id=stripe_id).exclude(pk=pk)
    row = mirror.first()
    if row is None:
        return False
    if row.local_version or row.user_id:
        raise MirrorConflict(
            f"Stripe created {stripe_id} for this row, but row {row.pk} (made from Stripe's "
            f"event meanwhile) holds local edits: merge them into one row by hand."
        )
    mirror.forget()  # only the mirror row: the customer is the one this push created
    return True


class MirrorConflict(Exception):
    """The customer a push created is already mirrored by a row with edits of its own."""


def _answer_verdict(
    customer: Customer, intent: dict[str, Any], obj: dict[str, Any], fetched: Fetched
) -> Verdict:
    """``APPLY``, ``STALE`` (the row holds newer remote data: only the push is recorded) or
    ``REREAD`` (applied, then settled by a retrieve)."""
    if "synced_at" in intent:
        claimed = intent["synced_at"]
        seen = None if claimed is None else _parse(claimed)
        if customer.synced_at == seen and not customer.deleted:
            return Verdict.APPLY  # no remote data written since the request was made
    if fetched.observed is None and customer.remote_updated_at is not None:
        return Verdict.REREAD  # a replayed answer is as old as the first try: order unknown
    return verdict_for(customer, obj, fetched, NOT_A_REREAD)


def _settle(account: Account, stripe_id: str, seen: object) -> None:
    """Retrieve a customer whose pushed answer could not be ordered against the row's data."""
    try:
        reread(stripe_id, seen, account=account)
    except StripeError as exc:  # the push is done; the next event or pull settles the row
        logger.warning("Could not retrieve customer %s after its push: %s", stripe_id, exc)


def _handle_missing(
    account: Account, pk: int, intent: dict[str, Any], exc: InvalidRequestError
) -> PushResult:
    """An update answered 404: flag the row if Stripe deleted the customer, else fail it."""
    try:
        obj = CUSTOMERS.endpoints(account.client()).retrieve(intent["stripe_id"])
    except InvalidRequestError:
        message = describe(exc) + f" (not in {account}: check the API key)"
        return _fail(pk, message, intent)
    if not is_deleted(obj):
        return _fail(pk, describe(exc), intent)
    if intent["method"] == "delete":  # deleted already (the first try's answer was lost)
        return _apply_deletion(pk, intent, obj)
    Customer.objects.filter(pk=pk).update(
        deleted=True,
        push_intent=None,
        sync_status=SyncStatus.FAILED,
        sync_error="The customer was deleted in Stripe; local edits were not sent.",
    )
    return PushResult(PushOutcome.DELETED, pk, error="deleted in Stripe")


def _fail(pk: int, message: str, intent: dict[str, Any] | None = None) -> PushResult:
    with transaction.atomic():
        customer = Customer.objects.select_for_update().get(pk=pk)
        if intent is not None and intent["method"] == "delete":  # the customer is still there
            message = f"Stripe refused the deletion: {message}"
            Customer.objects.filter(pk=pk).update(deleted=False, delete_requested_at=None)
            customer.deleted = False
        _mark_failed(customer, message)
    return PushResult(PushOutcome.FAILED, pk, error=message)


def _mark_failed(customer: Customer, message: str) -> None:
    Customer.objects.filter(pk=customer.pk).update(
        sync_status=SyncStatus.FAILED, sync_error=message, push_intent=None, next_attempt_at=None
    )
    customer.sync_status, customer.sync_error = SyncStatus.FAILED, message
    logger.warning("Push of customer %s failed: %s", customer.pk, message)
    customer_push_failed.send(sender=Customer, customer=customer, error=message)


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value)

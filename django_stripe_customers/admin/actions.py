"""The customer list's actions: "Pull from Stripe", "Push to Stripe", "Retry failed pushes", and
"Erase personal data" (Django's own "Delete selected" deletes in Stripe: ``deletion``).

Each needs the change permission (erasing: the delete permission), runs now (so its outcome can
be shown) and reports in two messages: how many succeeded, and which failed and why.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from django.contrib import admin, messages
from django.core.exceptions import ImproperlyConfigured
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from ..models import Customer, SyncStatus
from ..stripe import StripeError
from ..sync.pull import pull_customer
from ..tasks import push_now

#: Failing rows named in a message, at most (the rest are counted).
MAX_NAMED_FAILURES: Final = 10


def _label(stripe_id: str | None, pk: int) -> str:
    return stripe_id or f"#{pk} (not in Stripe yet)"


def _inform(model_admin: Any, request: HttpRequest, count: int, one: str, many: str) -> None:
    """An information message about ``count`` customers, if there are any."""
    if count:
        model_admin.message_user(request, ngettext(one, many, count) % {"count": count})


def _failures_text(failures: Sequence[str]) -> str:
    named = "; ".join(failures[:MAX_NAMED_FAILURES])
    rest = len(failures) - MAX_NAMED_FAILURES
    return named + (f"; and {rest} more" if rest > 0 else "")


@admin.action(description=_("Pull from Stripe"), permissions=["change"])
def pull_from_stripe(model_admin: Any, request: HttpRequest, queryset: QuerySet[Customer]) -> None:
    pulled = 0
    failures: list[str] = []
    try:
        for pk, stripe_id in queryset.values_list("pk", "stripe_id"):
            if not stripe_id:
                failures.append(f"{_label(stripe_id, pk)}: nothing to pull")
                continue
            try:
                pull_customer(stripe_id)
            except StripeError as exc:
                failures.append(f"{stripe_id}: {exc.message or exc}")
            else:
                pulled += 1
    except ImproperlyConfigured as exc:
        model_admin.message_user(request, str(exc), messages.ERROR)
        return
    _report(model_admin, request, pulled, failures, done=_("Pulled"), undone=_("pull"))


@admin.action(description=_("Push to Stripe"), permissions=["change"])
def push_to_stripe(model_admin: Any, request: HttpRequest, queryset: QuerySet[Customer]) -> None:
    failures: list[str] = []
    to_push: list[int] = []
    in_sync: set[int] = set()
    for pk, stripe_id, status, deleted in queryset.values_list(
        "pk", "stripe_id", "sync_status", "deleted"
    ):
        if deleted:
            failures.append(f"{_label(stripe_id, pk)}: deleted in Stripe, not pushed")
        elif status == SyncStatus.FAILED:
            label = _label(stripe_id, pk)
            failures.append(f"{label}: its last push failed (use “Retry failed pushes”)")
        else:
            to_push.append(pk)
            if status == SyncStatus.SYNCED:
                in_sync.add(pk)
    _push_and_report(model_admin, request, to_push, failures, in_sync)


@admin.action(description=_("Retry failed pushes"), permissions=["change"])
def retry_failed_pushes(
    model_admin: Any, request: HttpRequest, queryset: QuerySet[Customer]
) -> None:
    pks = list(
        queryset.filter(sync_status=SyncStatus.FAILED, deleted=False).values_list("pk", flat=True)
    )
    _inform(
        model_admin,
        request,
        queryset.count() - len(pks),
        "%(count)d selected customer had no failed push to retry.",
        "%(count)d selected customers had no failed push to retry.",
    )
    if pks:
        Customer.objects.mark_pending(Customer.objects.filter(pk__in=pks))
        _push_and_report(model_admin, request, pks, [], set())


def _push_and_report(
    model_admin: Any, request: HttpRequest, pks: list[int], failures: list[str], in_sync: set[int]
) -> None:
    """Push each row now (synchronously, so the result can be shown) and report by the
    state each row ends in: with ``PUSH_ON_SAVE``, marking rows pending may already have
    pushed them (Celery eager) or queued them (a worker may be pushing them now)."""
    unanswered: dict[int, str] = {}
    try:
        for pk in pks:
            try:
                push_now(pk)
            except StripeError as exc:  # transient, after the client's retries
                unanswered[pk] = exc.message or str(exc)
    except ImproperlyConfigured as exc:
        model_admin.message_user(request, str(exc), messages.ERROR)
        return
    pushed = unchanged = 0
    rows = Customer.objects.filter(pk__in=pks).values_list(
        "pk", "stripe_id", "sync_status", "sync_error"
    )
    for pk, stripe_id, status, error in rows:
        label = _label(stripe_id, pk)
        if status == SyncStatus.SYNCED and pk in in_sync:
            unchanged += 1
        elif status == SyncStatus.SYNCED:
            pushed += 1
        elif status == SyncStatus.FAILED:
            failures.append(f"{label}: {error}")
        elif pk in unanswered:
            failures.append(f"{label}: Stripe did not answer ({unanswered[pk]}); still pending")
        else:
            failures.append(f"{label}: still pending (a push is in flight; try again shortly)")
    _report(model_admin, request, pushed, failures, done=_("Pushed"), undone=_("push"))
    _inform(
        model_admin,
        request,
        unchanged,
        "%(count)d customer was already in sync (nothing to push).",
        "%(count)d customers were already in sync (nothing to push).",
    )


def _report(
    model_admin: Any,
    request: HttpRequest,
    succeeded: int,
    failures: Sequence[str],
    *,
    done: Any,
    undone: Any,
) -> None:
    """One message with how many succeeded; one naming those that failed, and why."""
    if succeeded or not failures:
        message = ngettext(
            "%(done)s %(count)d customer.", "%(done)s %(count)d customers.", succeeded
        )
        model_admin.message_user(request, message % {"done": done, "count": succeeded})
    if failures:
        message = ngettext(
            "Could not %(undone)s %(count)d customer: %(which)s",
            "Could not %(undone)s %(count)d customers: %(which)s",
            len(failures),
        )
        which = _failures_text(failures)
        model_admin.message_user(
            request,
            message % {"undone": undone, "count": len(failures), "which": which},
            messages.ERROR,
        )


@admin.action(
    description=_("Erase personal data (customers deleted in Stripe)"), permissions=["delete"]
)
def erase_personal_data(
    model_admin: Any, request: HttpRequest, queryset: QuerySet[Customer]
) -> None:
    """For data-protection requests: name, email, phone, addresses, shipping and metadata
    scrubbed from the rows and snapshots of these deleted customers (others are left, named)."""
    live = list(queryset.filter(deleted=False).values_list("pk", "stripe_id"))
    erased = Customer.objects.filter(pk__in=queryset.filter(deleted=True).values("pk")).erase()
    _inform(
        model_admin,
        request,
        erased,
        "Erased the personal data of %(count)d deleted customer.",
        "Erased the personal data of %(count)d deleted customers.",
    )
    if live:
        names = _failures_text([_label(stripe_id, pk) for pk, stripe_id in live])
        model_admin.message_user(
            request,
            _("Not erased (not deleted in Stripe: delete them first): %(names)s")
            % {"names": names},
            messages.WARNING,
        )

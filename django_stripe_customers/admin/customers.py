"""The admin of the mirror: sync status at a glance, Stripe's limits in the form, a sync panel
with the pending edits, and "Pull from Stripe" / "Push to Stripe" / "Retry failed pushes".

Saving in the admin is a plain ``Customer.save()``: it marks the row pending and pushes on commit.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final

from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.db.models import Q, QuerySet, TextField
from django.db.models.functions import Cast
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from ..forms import CustomerAdminForm
from ..models import Customer, SyncStatus, WebhookEvent
from ..stripe import StripeError
from ..sync.pull import fields_from_stripe, pull_customer
from ..sync.push import compute_request, push_customer
from .outbox import OverduePushFilter, overdue_notice

# -- amounts -----------------------------------------------------------------------------------

#: Currencies Stripe counts in whole units (``amount=500`` is 500 JPY), as Stripe publishes them.
ZERO_DECIMAL_CURRENCIES: Final = frozenset(
    "bif clp djf gnf jpy kmf krw mga pyg rwf ugx vnd vuv xaf xof xpf".split()
)
#: Currencies Stripe counts in thousandths (``amount=5124`` is 5.124 KWD).
THREE_DECIMAL_CURRENCIES: Final = frozenset("bhd jod kwd omr tnd".split())


def currency_decimals(currency: str) -> int:
    code = currency.lower()
    if code in ZERO_DECIMAL_CURRENCIES:
        return 0
    return 3 if code in THREE_DECIMAL_CURRENCIES else 2


def format_amount(amount: int, currency: str | None) -> str:
    """A Stripe amount (in the currency's smallest unit) as people read it: ``-5.00 USD``.

    Without a currency the unit is unknown, so the raw amount is shown as such.
    """
    if not currency:
        return f"{amount:,} (no currency)" if amount else "0"
    decimals = currency_decimals(currency)
    value = Decimal(amount).scaleb(-decimals)
    return f"{value:,.{decimals}f} {currency.upper()}"


# -- sync status and pending edits -------------------------------------------------------------

STATUS_HELP: Final = {
    SyncStatus.SYNCED: _("Stripe has every local edit."),
    SyncStatus.PENDING: _("Local edits are waiting to be pushed to Stripe."),
    SyncStatus.FAILED: _("The last push failed; the local edits are kept."),
}


def sync_badge(customer: Customer) -> SafeString:
    """The sync status as a labelled, coloured badge (the text says it; colour only helps)."""
    status = SyncStatus(customer.sync_status)
    title = customer.sync_error if status == SyncStatus.FAILED and customer.sync_error else None
    return format_html(
        '<span class="sc-badge sc-badge--{}" title="{}">{}</span>',
        status.value,
        title or STATUS_HELP[status],
        status.label,
    )


@dataclass(frozen=True)
class FieldChange:
    """One pending edit: ``field`` is a param path (``email``, ``metadata[plan]``,
    ``address[city]``), ``synced`` the value in the last synced snapshot, ``local`` the edit."""

    field: str
    synced: Any
    local: Any


def _blank(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def _field_changes(path: str, synced: Any, local: Any) -> list[FieldChange]:
    """Objects compared key by key, in key order (unset keys equal absent ones); the rest
    whole."""
    if isinstance(synced, dict) or isinstance(local, dict):
        if all(value is None or isinstance(value, dict) for value in (synced, local)):
            old, new = synced or {}, local or {}
            keys = sorted({*old, *new})
            return [
                change
                for key in keys
                for change in _field_changes(f"{path}[{key}]", old.get(key), new.get(key))
            ]
    if synced == local or (_blank(synced) and _blank(local)):
        return []
    return [FieldChange(path, synced, local)]


def pending_changes(customer: Customer) -> list[FieldChange]:
    """What the next push would change, field by field, against the last synced snapshot.

    The fields are those ``compute_request`` would send (so the panel never disagrees with the
    push); raises ``ValidationError`` when the edits cannot be sent as they are.
    """
    _method, params = compute_request(customer)
    synced = fields_from_stripe(customer.stripe_data or {}) if customer.stripe_id else {}
    return [
        change
        for name in params
        for change in _field_changes(name, synced.get(name), getattr(customer, name))
    ]


def _validation_text(exc: ValidationError) -> str:
    return "; ".join(exc.messages)


# -- read-only displays ------------------------------------------------------------------------


def json_block(value: Any) -> Any:
    """A Stripe-computed object, readable: ``None`` when empty, ``none`` for an empty list
    object (``sources``, ``subscriptions``, ``tax_ids``), else indented JSON."""
    if _blank(value):
        return None
    if isinstance(value, dict) and value.get("object") == "list" and not value.get("data"):
        return _("none")
    text = json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True)
    return format_html('<pre class="sc-json">{}</pre>', text)


def _json_display(name: str, label: Any) -> Callable[[CustomerAdmin, Customer], Any]:
    @admin.display(description=label)
    def display(model_admin: CustomerAdmin, customer: Customer) -> Any:
        shown = json_block(getattr(customer, name))
        return model_admin.get_empty_value_display() if shown is None else shown

    display.__name__ = f"{name}_display"
    return display


# -- metadata search ---------------------------------------------------------------------------


def metadata_value_contains(term: str) -> Q:
    """Rows whose metadata has a value containing ``term`` (case-insensitive; keys not searched).

    Matched on the JSON text, which SQLite stores ASCII-escaped and PostgreSQL renders as is, so
    both spellings of the term are tried.
    """
    spellings = {json.dumps(term)[1:-1], json.dumps(term, ensure_ascii=False)[1:-1]}
    alternatives = "|".join(re.escape(spelling) for spelling in sorted(spellings))
    pattern = rf'":\s*"(?:[^"\\]|\\.)*?(?:{alternatives})'
    return Q(metadata_text__iregex=pattern)


# -- actions' report ---------------------------------------------------------------------------

#: Failing rows named in a message, at most (the rest are counted).
MAX_NAMED_FAILURES: Final = 10


def _label(stripe_id: str | None, pk: int) -> str:
    return stripe_id or f"#{pk} (not in Stripe yet)"


def _failures_text(failures: Sequence[str]) -> str:
    named = "; ".join(failures[:MAX_NAMED_FAILURES])
    rest = len(failures) - MAX_NAMED_FAILURES
    return named + (f"; and {rest} more" if rest > 0 else "")


#: Events listed on a customer's change page.
RECENT_EVENTS: Final = 10

# -- the admins --------------------------------------------------------------------------------

#: Columns the list never shows: the snapshot and Stripe's nested objects can be large.
LIST_DEFERRED: Final = (
    "stripe_data",
    "push_intent",
    "address",
    "shipping",
    "invoice_settings",
    "metadata",
    "discount",
    "cash_balance",
    "invoice_credit_balance",
    "sources",
    "subscriptions",
    "tax",
    "tax_ids",
)


class CustomerChangeList(ChangeList):
    """The list reads only the columns it shows (one query for the page, whatever its size)."""

    def get_queryset(self, request: HttpRequest, *args: Any, **kwargs: Any) -> QuerySet[Any]:
        # *args: Django 5.0 added ``exclude_parameters``; 4.2 has only ``request``.
        return super().get_queryset(request, *args, **kwargs).defer(*LIST_DEFERRED)


if TYPE_CHECKING:
    from django.contrib.admin.options import _FieldsetSpec

    _CustomerModelAdmin = admin.ModelAdmin[Customer]
else:  # ModelAdmin is generic for type checkers only
    _CustomerModelAdmin = admin.ModelAdmin


@admin.register(Customer)
class CustomerAdmin(_CustomerModelAdmin):
    form = CustomerAdminForm
    list_display = (
        "email",
        "name",
        "stripe_id",
        "sync_status_badge",
        "balance_amount",
        "delinquent",
        "deleted",
        "created_on",
    )
    list_display_links = ("email", "name")
    search_fields = ("email", "name", "phone", "stripe_id")
    search_help_text = _("Email, name, phone, Stripe id or a metadata value.")
    list_filter = (
        "sync_status",
        OverduePushFilter,
        "deleted",
        "delinquent",
        "livemode",
        "currency",
        "tax_exempt",
    )
    raw_id_fields = ("user",)
    actions = ("pull_from_stripe", "push_to_stripe", "retry_failed_pushes")

    discount_display = _json_display("discount", _("discount"))
    cash_balance_display = _json_display("cash_balance", _("cash balance"))
    invoice_credit_balance_display = _json_display(
        "invoice_credit_balance", _("invoice credit balance")
    )
    sources_display = _json_display("sources", _("sources"))
    subscriptions_display = _json_display("subscriptions", _("subscriptions"))
    tax_display = _json_display("tax", _("tax (automatic tax, location)"))
    tax_ids_display = _json_display("tax_ids", _("tax ids"))

    #: Read-only on every customer: what Stripe computes.
    stripe_managed = (
        "stripe_id",
        "created",
        "livemode",
        "currency",
        "delinquent",
        "deleted",
        "customer_account",
        "discount_display",
        "cash_balance_display",
        "invoice_credit_balance_display",
        "sources_display",
        "subscriptions_display",
    )

    class Media:
        css = {"all": ("stripe_customers/admin.css",)}

    # -- the change form -------------------------------------------------------------------

    def get_fieldsets(self, request: HttpRequest, obj: Customer | None = None) -> _FieldsetSpec:
        adding = obj is None
        invoicing: tuple[Any, ...] = (
            ("invoice_prefix", "next_invoice_sequence"),
            "balance",
            "invoice_settings",
            "test_clock" if adding else "default_source",
        )
        tax = ("tax_exempt",) if adding else ("tax_exempt", "tax_display", "tax_ids_display")
        fieldsets: _FieldsetSpec = [
            (
                _("Identity"),
                {"fields": ("name", ("business_name", "individual_name"), "description", "user")},
            ),
            (_("Contact"), {"fields": ("email", "phone", "preferred_locales")}),
            (_("Metadata"), {"fields": ("metadata",)}),
            (_("Addresses"), {"fields": ("address", "shipping")}),
            (_("Invoicing"), {"fields": invoicing}),
            (_("Tax"), {"fields": tax}),
        ]
        if adding:
            return fieldsets
        return [
            (_("Sync"), {"fields": ("sync_panel",)}),
            *fieldsets,
            (_("Stripe-managed"), {"fields": (*self.stripe_managed, "test_clock")}),
            (_("Recent Stripe events"), {"fields": ("recent_events",)}),
        ]

    def get_readonly_fields(
        self, request: HttpRequest, obj: Customer | None = None
    ) -> tuple[str, ...]:
        if obj is None:
            return ()
        return (
            "sync_panel",
            "recent_events",
            *self.stripe_managed,
            "test_clock",  # a create-only parameter
            "tax_display",
            "tax_ids_display",
        )

    @admin.display(description=_("Webhook and catch-up events"))
    def recent_events(self, customer: Customer) -> SafeString:
        events = WebhookEvent.objects.filter(customer_stripe_id=customer.stripe_id or "-").only(
            "pk", "event_id", "type", "status", "created", "error"
        )[:RECENT_EVENTS]
        return render_to_string(
            "stripe_customers/admin/recent_events.html", {"events": list(events)}
        )

    @admin.display(description=_("Sync with Stripe"))
    def sync_panel(self, customer: Customer) -> SafeString:
        changes: list[FieldChange] = []
        changes_error = ""
        try:
            changes = pending_changes(customer)
        except ValidationError as exc:
            changes_error = _validation_text(exc)
        return render_to_string(
            "stripe_customers/admin/sync_panel.html",
            {
                "customer": customer,
                "badge": sync_badge(customer),
                "status_help": STATUS_HELP[SyncStatus(customer.sync_status)],
                "changes": changes,
                "changes_error": changes_error,
                "mode": _("live mode") if customer.livemode else _("test mode"),
            },
        )

    # -- the changelist --------------------------------------------------------------------

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return CustomerChangeList

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        notice = overdue_notice(request.path)
        if notice is not None and request.method == "GET":
            self.message_user(request, notice, messages.WARNING)
        return super().changelist_view(request, extra_context)

    @admin.display(description=_("sync"), ordering="sync_status")
    def sync_status_badge(self, customer: Customer) -> SafeString:
        return sync_badge(customer)

    @admin.display(description=_("balance"), ordering="balance")
    def balance_amount(self, customer: Customer) -> SafeString | None:
        balance = customer.balance
        if balance is None:
            return None
        if not customer.currency and balance:
            return format_html(
                '<span class="sc-amount" title="{}">{}</span> <span class="sc-note">{}</span>',
                _("In the smallest currency unit: this customer has no currency yet."),
                f"{balance:,}",
                _("(no currency)"),
            )
        title = _("Negative: credit for the next invoices.") if balance < 0 else ""
        return format_html(
            '<span class="sc-amount" title="{}">{}</span>',
            title,
            format_amount(balance, customer.currency),
        )

    @admin.display(description=_("created"), ordering="created")
    def created_on(self, customer: Customer) -> SafeString | None:
        if customer.created is None:
            return None
        return format_html(
            '<time datetime="{}" title="{}">{}</time>',
            customer.created.isoformat(),
            date_format(customer.created, "DATETIME_FORMAT"),
            date_format(customer.created, "SHORT_DATE_FORMAT"),
        )

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Customer], search_term: str
    ) -> tuple[QuerySet[Customer], bool]:
        if "\x00" in search_term:  # no stored text holds one (PostgreSQL cannot even compare)
            return queryset.none(), False
        results, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        term = search_term.strip()
        if term:
            by_metadata = queryset.alias(metadata_text=Cast("metadata", TextField())).filter(
                metadata_value_contains(term)
            )
            results = results | by_metadata
        return results, may_have_duplicates

    # -- actions ---------------------------------------------------------------------------

    @admin.action(description=_("Pull from Stripe"), permissions=["change"])
    def pull_from_stripe(self, request: HttpRequest, queryset: QuerySet[Customer]) -> None:
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
            self.message_user(request, str(exc), messages.ERROR)
            return
        self._report(request, pulled, failures, done=_("Pulled"), undone=_("pull"))

    @admin.action(description=_("Push to Stripe"), permissions=["change"])
    def push_to_stripe(self, request: HttpRequest, queryset: QuerySet[Customer]) -> None:
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
        self._push_and_report(request, to_push, failures, in_sync)

    @admin.action(description=_("Retry failed pushes"), permissions=["change"])
    def retry_failed_pushes(self, request: HttpRequest, queryset: QuerySet[Customer]) -> None:
        pks = list(
            queryset.filter(sync_status=SyncStatus.FAILED, deleted=False).values_list(
                "pk", flat=True
            )
        )
        left_alone = queryset.count() - len(pks)
        if left_alone:
            message = ngettext(
                "%(count)d selected customer had no failed push to retry.",
                "%(count)d selected customers had no failed push to retry.",
                left_alone,
            )
            self.message_user(request, message % {"count": left_alone}, messages.INFO)
        if pks:
            Customer.objects.mark_pending(Customer.objects.filter(pk__in=pks))
            self._push_and_report(request, pks, [], set())

    def _push_and_report(
        self, request: HttpRequest, pks: list[int], failures: list[str], in_sync: set[int]
    ) -> None:
        """Push each row now (synchronously, so the result can be shown) and report by the
        state each row ends in: with ``PUSH_ON_SAVE``, marking rows pending may already have
        pushed them (Celery eager) or queued them (a worker may be pushing them now)."""
        unanswered: dict[int, str] = {}
        try:
            for pk in pks:
                try:
                    push_customer(pk)
                except StripeError as exc:  # transient, after the client's retries
                    unanswered[pk] = exc.message or str(exc)
        except ImproperlyConfigured as exc:
            self.message_user(request, str(exc), messages.ERROR)
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
        self._report(request, pushed, failures, done=_("Pushed"), undone=_("push"))
        if unchanged:
            message = ngettext(
                "%(count)d customer was already in sync (nothing to push).",
                "%(count)d customers were already in sync (nothing to push).",
                unchanged,
            )
            self.message_user(request, message % {"count": unchanged}, messages.INFO)

    def _report(
        self,
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
            self.message_user(request, message % {"done": done, "count": succeeded})
        if failures:
            message = ngettext(
                "Could not %(undone)s %(count)d customer: %(which)s",
                "Could not %(undone)s %(count)d customers: %(which)s",
                len(failures),
            )
            which = _failures_text(failures)
            self.message_user(
                request,
                message % {"undone": undone, "count": len(failures), "which": which},
                messages.ERROR,
            )

"""The customers' admin: sync status at a glance, Stripe's limits on the form, a sync panel with
the edits the next push sends, the overdue-push notice, and the actions (``actions``).

Saving in the admin is a plain ``Customer.save()``: it marks the row pending and pushes on commit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import ValidationError
from django.db.models import QuerySet, TextField
from django.db.models.functions import Cast
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _

from .. import schema
from ..models import Customer, SyncStatus, WebhookEvent
from .accounts import (
    ModeFilter,
    StripeAccountFilter,
    account_choices,
    account_html,
    account_label,
    deauthorized_at,
    deauthorized_notice,
    mode_label,
    shows_account_column,
)
from .actions import erase_personal_data, pull_from_stripe, push_to_stripe, retry_failed_pushes
from .display import (
    STATUS_HELP,
    FieldChange,
    balance_html,
    created_html,
    json_display,
    metadata_value_contains,
    pending_changes,
    sync_badge,
    validation_text,
)
from .forms import CustomerAdminForm
from .outbox import OverduePushFilter, overdue_notice

#: Events listed on a customer's change page.
RECENT_EVENTS: Final = 10
#: Stripe-managed attributes held as JSON: shown read-only, as indented JSON.
JSON_MANAGED: Final = tuple(
    name for name in schema.STRIPE_MANAGED if schema.ROLES[name]["column"] == "json"
)
#: Columns the list never reads: the snapshot and Stripe's objects can be large.
LIST_DEFERRED: Final = (
    "stripe_data",
    "push_intent",
    *(name for name in schema.MIRRORED if schema.ROLES[name]["column"] == "json"),
)
#: Where the change page puts what only Stripe sets, and what Stripe takes on create only.
#: The tax attributes sit with ``tax_exempt`` (the layout below); the rest in their own group.
TAX_GROUP: Final = ("tax", "tax_ids")
STRIPE_MANAGED_SHOWN: Final = (
    "stripe_id",
    *(
        f"{name}_display" if name in JSON_MANAGED else name
        for name in schema.STRIPE_MANAGED
        if name not in TAX_GROUP
    ),
    "deleted",
    *schema.CREATE_ONLY,
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
    search_fields = ("email", "name", "phone", "stripe_id", "stripe_account")
    search_help_text = _("Email, name, phone, Stripe id, account (acct_...) or a metadata value.")
    list_filter = (
        "sync_status",
        OverduePushFilter,
        "deleted",
        "delinquent",
        StripeAccountFilter,
        ModeFilter,
        "currency",
        "tax_exempt",
    )
    raw_id_fields = ("user",)  # where the user model's admin cannot search (see below)
    actions = (pull_from_stripe, push_to_stripe, retry_failed_pushes, erase_personal_data)

    class Media:
        css = {"all": ("stripe_customers/admin.css",)}

    # -- the change form -------------------------------------------------------------------

    def save_model(self, request: HttpRequest, obj: Customer, form: Any, change: bool) -> None:
        """A plain save (pushed on commit) of what this page changed (``conflicts``), with the
        form's write-only parameters."""
        written = form.fields_to_write() if change else None
        if written is not None and not written:
            return  # nothing changed on this page: nothing to write, nothing to push
        obj.save(stripe_params=form.stripe_params(), update_fields=written)

    def delete_model(self, request: HttpRequest, obj: Customer) -> None:
        """Deleting a customer that is in Stripe deletes it there, through the outbox; the row
        stays, flagged deleted (``deletion``). The message says which happened."""
        in_stripe = bool(obj.stripe_id or obj.push_intent) and not obj.deleted
        obj.delete()
        if in_stripe:
            self.message_user(
                request,
                _(
                    "Its deletion is sent to Stripe (the sync panel shows it until Stripe has "
                    "taken it); the row is kept, flagged deleted, with its link to its user."
                ),
                messages.INFO,
            )

    def has_change_permission(self, request: HttpRequest, obj: Customer | None = None) -> bool:
        """A customer deleted in Stripe is shown read-only (its sync panel says why): Stripe
        takes no edit of it, as the API's 409 says too."""
        if obj is not None and obj.deleted:
            return False
        return super().has_change_permission(request, obj)

    def get_autocomplete_fields(self, request: HttpRequest) -> tuple[str, ...]:
        """The owner is picked by autocomplete where the project's user admin can search
        (Django's ``UserAdmin`` can); a project's own user model without ``search_fields``
        keeps the raw id (a static ``autocomplete_fields`` would fail its system check)."""
        owner_admin = self.admin_site._registry.get(Customer._meta.get_field("user").related_model)
        return ("user",) if owner_admin is not None and owner_admin.search_fields else ()

    def get_fieldsets(self, request: HttpRequest, obj: Customer | None = None) -> _FieldsetSpec:
        """The layout: where each attribute a person edits is shown."""
        adding = obj is None
        invoicing: tuple[Any, ...] = (
            ("invoice_prefix", "next_invoice_sequence"),
            "balance",
            "invoice_settings",
            *(schema.CREATE_ONLY if adding else schema.UPDATE_ONLY),
        )
        tax_shown = () if adding else tuple(f"{name}_display" for name in TAX_GROUP)
        fieldsets: _FieldsetSpec = [
            (
                _("Identity"),
                {"fields": ("name", ("business_name", "individual_name"), "description", "user")},
            ),
            (_("Contact"), {"fields": ("email", "phone", "preferred_locales")}),
            (_("Metadata"), {"fields": ("metadata",)}),
            (_("Addresses"), {"fields": ("address", "shipping")}),
            (_("Invoicing"), {"fields": invoicing}),
            (_("Tax"), {"fields": ("tax_exempt", *tax_shown)}),
        ]
        if adding:
            sent_once = ("payment_method", ("tax_id_type", "tax_id_value"))
            where: _FieldsetSpec = []
            if len(account_choices()) > 1:  # as the form decides (``forms``)
                where = [(_("Stripe account"), {"fields": ("account",)})]
            return [
                *where,
                *fieldsets,
                (_("Sent once to Stripe, on create"), {"fields": sent_once}),
            ]
        return [
            # read_values: hidden
            (_("Sync"), {"fields": ("account_display", "sync_panel", "read_values")}),
            *fieldsets,
            (_("Stripe-managed"), {"fields": STRIPE_MANAGED_SHOWN}),
            (_("Recent Stripe events"), {"fields": ("recent_events",)}),
        ]

    def get_readonly_fields(
        self, request: HttpRequest, obj: Customer | None = None
    ) -> tuple[str, ...]:
        if obj is None:
            return ()
        tax_shown = tuple(f"{name}_display" for name in TAX_GROUP)
        shown = ("account_display", "sync_panel", "recent_events")
        return (*shown, *STRIPE_MANAGED_SHOWN, *tax_shown)

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        """The page warns, on top, when the row's account disconnected from the platform."""
        if request.method == "GET":
            customer = self.get_object(request, unquote(object_id))
            since = None if customer is None else deauthorized_at(customer)
            if customer is not None and since is not None:
                self.message_user(request, deauthorized_notice(customer, since), messages.WARNING)
        return super().change_view(request, object_id, form_url, extra_context)

    @admin.display(description=_("Stripe account"))
    def account_display(self, customer: Customer) -> SafeString:
        return account_html(customer, deauthorized_at(customer))

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
            changes_error = validation_text(exc)
        return render_to_string(
            "stripe_customers/admin/sync_panel.html",
            {
                "customer": customer,
                "badge": sync_badge(customer),
                "status_help": STATUS_HELP[SyncStatus(customer.sync_status)],
                "changes": changes,
                "changes_error": changes_error,
                "mode": _dashboard_mode(customer),
            },
        )

    # -- the changelist --------------------------------------------------------------------

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return CustomerChangeList

    def get_list_display(self, request: HttpRequest) -> tuple[str, ...]:
        """The account column only when the table holds more than one account."""
        shown = tuple(self.list_display)
        if not shows_account_column(request, self.get_queryset(request)):
            return shown
        at = shown.index("stripe_id") + 1
        return (*shown[:at], "account_column", *shown[at:])

    @admin.display(description=_("Stripe account"), ordering="stripe_account")
    def account_column(self, customer: Customer) -> str:
        return f"{account_label(customer.stripe_account)} ({mode_label(customer.livemode)})"

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
        return balance_html(customer)

    @admin.display(description=_("created"), ordering="created")
    def created_on(self, customer: Customer) -> SafeString | None:
        return created_html(customer)

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


def _dashboard_mode(customer: Customer) -> str:
    """How the dashboard link names where it goes: the mode, and a connected account."""
    if customer.stripe_account:
        return f"{customer.stripe_account}, {mode_label(customer.livemode)}"
    return mode_label(customer.livemode)


for _name in JSON_MANAGED:  # read-only displays: cash_balance_display, sources_display, ...
    setattr(CustomerAdmin, f"{_name}_display", json_display(_name))

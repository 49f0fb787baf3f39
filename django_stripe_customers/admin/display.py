"""How the admin shows a customer: amounts in the currency's units, the sync badge, the edits
the next push would send, Stripe's objects as JSON, and the metadata search.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

from django.contrib import admin
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _

from ..mirror import fields_from_stripe
from ..models import Customer, SyncStatus

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

    The fields are those the push would send (``requested_edit``, so the panel never disagrees
    with it); raises ``ValidationError`` when the edits cannot be sent as they are.
    """
    params = customer.requested_edit().params
    synced = fields_from_stripe(customer.stripe_data or {}) if customer.stripe_id else {}
    return [
        change
        for name in params
        for change in _field_changes(name, synced.get(name), getattr(customer, name))
    ]


def validation_text(exc: ValidationError) -> str:
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


def json_display(name: str) -> Callable[[Any, Customer], Any]:
    """A read-only display of a JSON attribute, for ``ModelAdmin.readonly_fields``."""

    @admin.display(description=name.replace("_", " "))
    def display(model_admin: Any, customer: Customer) -> Any:
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


def balance_html(customer: Customer) -> SafeString | None:
    """The balance in the currency's units; the raw amount when there is no currency yet."""
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


def created_html(customer: Customer) -> SafeString | None:
    if customer.created is None:
        return None
    return format_html(
        '<time datetime="{}" title="{}">{}</time>',
        customer.created.isoformat(),
        date_format(customer.created, "DATETIME_FORMAT"),
        date_format(customer.created, "SHORT_DATE_FORMAT"),
    )

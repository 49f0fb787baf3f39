"""Accounts in the admin: the list's "Stripe account" and "Mode" filters and column, the add
form's choice of account, and the warning on a row whose account disconnected.

A row's account is ``(stripe_account, livemode)`` (``accounts``): ``stripe_account`` is null for
the key's own account, shown as "Own account", and ``own`` in the list's query string.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import ImproperlyConfigured
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from ..accounts import UnknownAccount, default_account, find, listed
from ..models import Customer, StripeAccount

#: The own account (``stripe_account`` null) in the list's query string.
OWN: Final = "own"
#: Where a request keeps the accounts the table holds (read once per page).
_PRESENT: Final = "_stripe_customers_accounts"
_TRUE: Final = frozenset({"1", "true", "True"})
_FALSE: Final = frozenset({"0", "false", "False"})

AccountKey = tuple[str | None, bool]


def account_label(stripe_account: str | None) -> str:
    return stripe_account or gettext("Own account")


def mode_label(livemode: bool) -> str:
    return gettext("live mode") if livemode else gettext("test mode")


def present_accounts(request: HttpRequest, queryset: QuerySet[Customer]) -> list[AccountKey]:
    """The ``(stripe_account, livemode)`` pairs the table holds, in one query per request
    (the filters and the column share it); an empty ``stripe_account`` counts as null."""
    cached: list[AccountKey] | None = getattr(request, _PRESENT, None)
    if cached is None:
        pairs = queryset.order_by().values_list("stripe_account", "livemode").distinct()
        found = {(stripe_account or None, bool(livemode)) for stripe_account, livemode in pairs}
        cached = sorted(found, key=lambda pair: (pair[0] is not None, pair[0] or "", pair[1]))
        setattr(request, _PRESENT, cached)
    return cached


def shows_account_column(request: HttpRequest, queryset: QuerySet[Customer]) -> bool:
    """Whether the list shows each row's account: when the table holds more than one."""
    return len(present_accounts(request, queryset)) > 1


class StripeAccountFilter(admin.SimpleListFilter):
    """``?stripe_account=own`` (the key's own account, null) or ``?stripe_account=acct_...``;
    the choices are the accounts the table holds."""

    title = _("Stripe account")
    parameter_name = "stripe_account"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        present = present_accounts(request, model_admin.get_queryset(request))
        accounts = dict.fromkeys(stripe_account for stripe_account, _livemode in present)
        return [
            (stripe_account or OWN, account_label(stripe_account)) for stripe_account in accounts
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any] | None:
        value = self.value()
        if value is None:
            return queryset
        if value == OWN:
            return queryset.filter(Q(stripe_account__isnull=True) | Q(stripe_account=""))
        return queryset.filter(stripe_account=value)


class ModeFilter(admin.SimpleListFilter):
    """``?livemode__exact=1`` (live) or ``0`` (test), as Django's boolean filter spelled it."""

    title = _("mode")
    parameter_name = "livemode__exact"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [("1", _("live")), ("0", _("test"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any] | None:
        value = self.value()
        if value is None:
            return queryset
        if value in _TRUE | _FALSE:
            return queryset.filter(livemode=value in _TRUE)
        raise IncorrectLookupParameters(f"livemode__exact: {value!r} is neither 1 nor 0")


# -- the change page -------------------------------------------------------------------------


def deauthorized_at(customer: Customer) -> datetime | None:
    """When the platform lost access to the row's account, if it did."""
    records = StripeAccount.objects.filter(
        stripe_account=customer.stripe_account or None,
        livemode=customer.livemode,
        deauthorized_at__isnull=False,
    )
    return records.values_list("deauthorized_at", flat=True).first()


def account_html(customer: Customer, since: datetime | None) -> SafeString:
    """The row's account and mode, and when it disconnected (``since``), if it did."""
    text = f"{account_label(customer.stripe_account)} ({mode_label(customer.livemode)})"
    if since is None:
        return format_html("{}", text)
    return format_html(
        '{} <strong class="sc-sync__error">{}</strong>',
        text,
        gettext("disconnected from the platform on %(when)s")
        % {"when": date_format(since, "DATETIME_FORMAT")},
    )


def deauthorized_notice(customer: Customer, since: datetime) -> str:
    """The change page's warning for a row whose account disconnected."""
    return gettext(
        "The Stripe account of this customer, %(account)s (%(mode)s), disconnected from the "
        "platform on %(when)s (account.application.deauthorized): the row is kept as it was, "
        "and local edits are no longer sent to Stripe. Reconnect the account to sync it again."
    ) % {
        "account": account_label(customer.stripe_account),
        "mode": mode_label(customer.livemode),
        "when": date_format(since, "DATETIME_FORMAT"),
    }


# -- the add form ----------------------------------------------------------------------------


def choice_value(stripe_account: str | None, livemode: bool) -> str:
    """An account as the add form's choice: ``test:`` (own account), ``live:acct_...``."""
    return f"{'live' if livemode else 'test'}:{stripe_account or ''}"


def parse_choice(value: str) -> AccountKey:
    mode, _sep, stripe_account = value.partition(":")
    return stripe_account or None, mode == "live"


def account_choices() -> list[tuple[str, str]]:
    """The accounts a new customer may go to, the default one first: those the settings name
    and those listed from Stripe (``StripeAccount``) that a key reaches; none disconnected.
    Empty when the settings name no account (the system checks say why)."""
    try:
        configured: list[AccountKey] = [(a.stripe_account, a.livemode) for a in listed()]
        default = default_account()
    except ImproperlyConfigured:
        return []
    records = StripeAccount.objects.values_list("stripe_account", "livemode", "deauthorized_at")
    gone: set[AccountKey] = set()
    for stripe_account, livemode, since in records:
        key: AccountKey = (stripe_account or None, livemode)
        if since is not None:
            gone.add(key)
        elif key not in configured and _reachable(key):
            configured.append(key)
    found = dict.fromkeys([(default.stripe_account, default.livemode), *configured])
    return [
        (choice_value(*key), f"{account_label(key[0])} ({mode_label(key[1])})")
        for key in found
        if key not in gone
    ]


def _reachable(key: AccountKey) -> bool:
    try:
        find(*key)
    except UnknownAccount:
        return False
    return True

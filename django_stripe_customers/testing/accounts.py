"""Stripe Connect and live mode: accounts, events, and the ``/v1/account(s)`` endpoints.

One store per (platform, mode, account), kept by ``platforms.Stores``: the platform comes from
the key (``platforms``), the mode too (``sk_live_``/``rk_live_``: live), the account from the
``Stripe-Account`` header (absent, or the platform's own id: the platform's own store). Test and
live data never meet; each mode has its own connected accounts. An account that is not (or no
longer) connected to the key's platform answers 403 ``account_invalid``, as Stripe does.
"""

from __future__ import annotations

import copy
import json
import re
from typing import TYPE_CHECKING, Any, Final

from .. import schema
from .errors import ApiError, invalid, mask_key
from .params import COMMON_PARAMS, missing_parameter, validate
from .store import SortedIndex, Store
from .webhooks import WebhookDispatcher

if TYPE_CHECKING:
    from .app import Call, EmulatorApp

#: ``GET /v1/account`` without ``Stripe-Account``: the default platform (the same in both modes;
#: an added key's platform answers the same with its own id).
ACCOUNT: dict[str, Any] = {
    "id": "acct_1EmuLatorTestAcct",
    "object": "account",
    "business_profile": {
        "mcc": None,
        "name": "Stripe Emulator",
        "product_description": None,
        "support_address": None,
        "support_email": None,
        "support_phone": None,
        "support_url": None,
        "url": None,
    },
    "business_type": None,
    "capabilities": {},
    "charges_enabled": True,
    "controller": {"type": "account"},
    "country": "US",
    "created": 1577836800,
    "default_currency": "usd",
    "details_submitted": True,
    "email": "emulator@example.com",
    "metadata": {},
    "payouts_enabled": True,
    "settings": {
        "branding": {"icon": None, "logo": None, "primary_color": None, "secondary_color": None},
        "dashboard": {"display_name": "Stripe Emulator", "timezone": "Etc/UTC"},
        "payments": {"statement_descriptor": "STRIPE EMULATOR"},
    },
    "type": "standard",
}
#: The platform's Connect application (``data.object`` of ``account.application.*`` events).
APPLICATION: Final[dict[str, Any]] = {
    "id": "ca_EmuLatorPlatformApplication000",
    "object": "application",
    "name": "Stripe Emulator",
}

ACCOUNT_ID: Final = re.compile(r"acct_[A-Za-z0-9]+")
_COUNTRY: Final = re.compile(r"[A-Za-z]{2}")
_CURRENCIES: Final = {"US": "usd", "CA": "cad", "GB": "gbp", "AU": "aud", "JP": "jpy"}
_EURO: Final = frozenset("AT BE DE ES FI FR GR IE IT LU NL PT".split())
_TEXT: Final = {"type": "string", "maxLength": 5000}
_PROFILE_FIELDS: Final = (
    "mcc",
    "name",
    "product_description",
    "support_email",
    "support_phone",
    "support_url",
    "url",
)

#: ``POST /v1/accounts``: the params the emulator knows (Stripe has more).
ACCOUNT_CREATE_PARAMS: Final[dict[str, Any]] = {
    **COMMON_PARAMS,
    "type": {"type": "string", "enum": ["custom", "express", "standard"]},
    "country": _TEXT,
    "email": _TEXT,
    "business_type": {
        "type": "string",
        "enum": ["company", "government_entity", "individual", "non_profit"],
    },
    "business_profile": {"type": "object", "fields": dict.fromkeys(_PROFILE_FIELDS, _TEXT)},
    "default_currency": _TEXT,
    "metadata": schema.CREATE_PARAMS["metadata"],
}
ACCOUNT_LIST_PARAMS: Final[dict[str, Any]] = {
    name: schema.LIST_PARAMS[name]
    for name in ("created", "ending_before", "expand", "limit", "starting_after")
}


def no_access(api_key: str, account: str) -> ApiError:
    """Stripe's 403 for an account that is not connected to the key's platform."""
    return ApiError(
        403,
        f"The provided key '{mask_key(api_key)}' does not have access to account '{account}' "
        "(or that account does not exist). Application access may have been revoked.",
        code="account_invalid",
        saved=False,
    )


def record_event(
    store: Store,
    webhooks: WebhookDispatcher,
    event_type: str,
    data: dict[str, Any],
    request: dict[str, Any],
) -> dict[str, Any]:
    """Store an event in ``store`` (lock held) and queue it for the endpoints that want it.

    Events of a connected account carry ``"account"`` and go to Connect endpoints only; only
    the endpoints of the store's platform get them.
    """
    connect = store.account is not None
    event: dict[str, Any] = {"id": store.new_id("evt_", 24), "object": "event"}
    if connect:
        event["account"] = store.account
    event.update(
        api_version=schema.API_VERSION,
        created=store.clock.now(),
        data=data,
        livemode=store.livemode,
        pending_webhooks=webhooks.count(
            connect=connect, livemode=store.livemode, platform=store.platform
        ),
        request=request,
        type=event_type,
    )
    payload = json.dumps(event).encode()
    stored: dict[str, Any] = json.loads(payload)
    store.add_event(stored)
    webhooks.enqueue(
        event["id"], payload, connect=connect, livemode=store.livemode, platform=store.platform
    )
    return stored


def new_account(account_id: str, created: int, params: dict[str, Any]) -> dict[str, Any]:
    """A freshly created connected account: nothing submitted, charges not enabled yet."""
    country = check_country(params.get("country") or "US")
    profile = dict.fromkeys(_PROFILE_FIELDS) | (params.get("business_profile") or {})
    currency = params.get("default_currency") or (
        "eur" if country in _EURO else _CURRENCIES.get(country)
    )
    metadata = {k: v for k, v in (params.get("metadata") or {}).items() if v != ""}
    return {
        "id": account_id,
        "object": "account",
        "business_profile": profile,
        "business_type": params.get("business_type") or None,
        "capabilities": {},
        "charges_enabled": False,
        "controller": {"is_controller": True, "type": "application"},
        "country": country,
        "created": created,
        "default_currency": currency,
        "details_submitted": False,
        "email": params.get("email") or None,
        "external_accounts": {
            "object": "list",
            "data": [],
            "has_more": False,
            "total_count": 0,
            "url": f"/v1/accounts/{account_id}/external_accounts",
        },
        "metadata": metadata,
        "payouts_enabled": False,
        "settings": {
            "branding": {"icon": None, "logo": None, "primary_color": None},
            "dashboard": {"display_name": None, "timezone": "Etc/UTC"},
            "payments": {"statement_descriptor": None},
        },
        "tos_acceptance": {"date": None},
        "type": params["type"],
    }


def check_country(country: str) -> str:
    if not _COUNTRY.fullmatch(country):
        raise invalid(
            f"Country '{country}' is unknown. Try using a 2-character alphanumeric country "
            "code instead, such as 'US', 'EG', or 'GB'.",
            param="country",
        )
    return country.upper()


# -- endpoints ------------------------------------------------------------------------------


def create_account(app: EmulatorApp, call: Call) -> tuple[int, Any]:
    """``POST /v1/accounts``: a new connected account of the key's platform."""
    params = validate(call.params, ACCOUNT_CREATE_PARAMS)
    app.expansions(params, frozenset())
    if call.store.account is not None:
        raise invalid(
            "A connected account cannot create accounts: send this request without the "
            "Stripe-Account header."
        )
    if "type" not in params:
        raise missing_parameter("type")
    with call.store.lock:
        account = app.stores.platform(call.store.livemode, call.store.platform).connect(params)
        return 200, copy.deepcopy(account)


def list_accounts(app: EmulatorApp, call: Call) -> tuple[int, Any]:
    """``GET /v1/accounts``: the connected accounts, newest first (none for a connected one)."""
    params = validate(call.params, ACCOUNT_LIST_PARAMS)
    app.expansions(params, frozenset(), prefix="data.")
    platform = app.stores.platform(call.store.livemode, call.store.platform)
    with call.store.lock:
        index = platform.index if call.store.account is None else SortedIndex()
        page = index.page(**app.list_window(params, index, "account"))
        data = [copy.deepcopy(platform.accounts[account_id]) for account_id in page.ids]
        body = {"object": "list", "data": data, "has_more": page.has_more}
        return 200, {**body, "url": "/v1/accounts"}


def retrieve_account(app: EmulatorApp, call: Call) -> tuple[int, Any]:
    """``GET /v1/accounts/{id}``: a connected account (or the platform itself)."""
    params = validate(call.params, COMMON_PARAMS)
    app.expansions(params, frozenset())
    assert call.object_id is not None
    account_id = call.object_id
    if call.store.account is not None and account_id != call.store.account:
        raise no_access(call.api_key, account_id)
    return 200, _account_of(app, call.store, account_id, call.api_key)


def retrieve_own_account(app: EmulatorApp, call: Call) -> tuple[int, Any]:
    """``GET /v1/account``: the key's account, or the ``Stripe-Account`` one."""
    params = validate(call.params, COMMON_PARAMS)
    app.expansions(params, frozenset())
    account_id = call.store.account or app.stores.platform(False, call.store.platform).id
    return 200, _account_of(app, call.store, account_id, call.api_key)


def _account_of(app: EmulatorApp, store: Store, account_id: str, api_key: str) -> Any:
    """The key's platform itself, or one of its connected accounts."""
    platform = app.stores.platform(store.livemode, store.platform)
    if account_id == platform.id:
        return platform.account
    with app.store.lock:
        account = platform.accounts.get(account_id)
        if account is None:
            raise no_access(api_key, account_id)
        return copy.deepcopy(account)

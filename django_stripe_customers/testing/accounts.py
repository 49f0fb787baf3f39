"""Stripe Connect and live mode: one store per (mode, account), the platform's connected
accounts, the ``Stripe-Account`` header, and the ``/v1/account(s)`` endpoints.

The mode comes from the key (``sk_live_``/``rk_live_``: live), the account from the
``Stripe-Account`` header (absent, or the platform's own id: the platform's own store). Test and
live data never meet; each mode has its own connected accounts. An account that is not (or no
longer) connected answers 403 ``account_invalid``, as Stripe does.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from .. import schema
from .errors import ApiError, invalid, mask_key
from .params import COMMON_PARAMS, missing_parameter, validate
from .store import SortedIndex, Store
from .webhooks import WebhookDispatcher

if TYPE_CHECKING:
    from .app import Call, EmulatorApp

#: ``GET /v1/account`` without ``Stripe-Account``: the platform (the same in both modes).
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


@dataclass
class Platform:
    """The platform in one mode: its own store, its connected accounts and their stores."""

    store: Store
    accounts: dict[str, dict[str, Any]] = field(default_factory=dict)
    index: SortedIndex = field(default_factory=SortedIndex)
    stores: dict[str, Store] = field(default_factory=dict)
    deauthorized: dict[str, dict[str, Any]] = field(default_factory=dict)

    def store_of(self, account: str | None) -> Store | None:
        """The store requests for ``account`` use; None if it is not connected."""
        if account is None or account == ACCOUNT["id"]:
            return self.store
        return self.stores[account] if account in self.accounts else None

    def connect(self, params: dict[str, Any], account_id: str | None = None) -> dict[str, Any]:
        """Create a connected account from validated ``POST /v1/accounts`` params."""
        store = self.store
        if account_id is not None:
            if not ACCOUNT_ID.fullmatch(account_id) or self.store_of(account_id) is not None:
                raise ValueError(f"{account_id!r} is not a free acct_ id")
            if account_id in self.stores:
                raise ValueError(f"{account_id!r} was deauthorized")
        while account_id is None or account_id in self.stores:
            account_id = store.new_id("acct_1", 15)
        account = new_account(account_id, store.clock.now(), params)
        self.accounts[account_id] = account
        self.index.add(account_id, account["created"])
        self.stores[account_id] = store.sibling(livemode=store.livemode, account=account_id)
        return account

    def deauthorize(self, account_id: str) -> Store:
        """Disconnect the account (its store is kept, out of reach); returns its store."""
        self.deauthorized[account_id] = self.accounts.pop(account_id)
        self.index.remove(account_id)
        return self.stores[account_id]


class Stores:
    """Every store of the emulator: the platform's in each mode and its accounts'."""

    def __init__(self, root: Store) -> None:
        self.root = root
        self._modes = self._fresh()

    def _fresh(self) -> dict[bool, Platform]:
        return {
            False: Platform(self.root),
            True: Platform(self.root.sibling(livemode=True, account=None)),
        }

    def platform(self, livemode: bool) -> Platform:
        return self._modes[livemode]

    def reset(self) -> None:
        """Empty every store and forget every connected account (lock held by the caller)."""
        self.root.reset()
        self._modes = self._fresh()

    def store_for(self, account: str | None, livemode: bool) -> Store:
        """The store of ``account`` (None: the platform's), deauthorized ones included."""
        platform = self._modes[livemode]
        if account is None or account == ACCOUNT["id"]:
            return platform.store
        store = platform.stores.get(account)
        if store is None:
            mode = "live" if livemode else "test"
            raise ValueError(f"{account!r} is not an account of the platform in {mode} mode")
        return store

    def deauthorize(self, account_id: str, livemode: bool, webhooks: WebhookDispatcher) -> str:
        """Disconnect a connected account (lock held); its ``account.application.deauthorized``
        event goes to Connect endpoints. Returns the event's id."""
        platform = self._modes[livemode]
        if account_id not in platform.accounts:
            raise ValueError(f"{account_id!r} is not a connected account in this mode")
        store = platform.deauthorize(account_id)
        data = {"object": dict(APPLICATION)}
        request = {"id": None, "idempotency_key": None}
        event = record_event(store, webhooks, "account.application.deauthorized", data, request)
        return str(event["id"])

    def __iter__(self) -> Iterator[Store]:
        for platform in self._modes.values():
            yield platform.store
            yield from platform.stores.values()

    def delivered(self, event_id: str) -> None:
        """One endpoint got the event: one fewer ``pending_webhooks``."""
        with self.root.lock:
            for store in self:
                event = store.events.get(event_id)
                if event is not None and event["pending_webhooks"] > 0:
                    event["pending_webhooks"] -= 1
                    return


def no_access(api_key: str, account: str) -> ApiError:
    """Stripe's 403 for an account that is not connected to the key's platform."""
    return ApiError(
        403,
        f"The provided key '{mask_key(api_key)}' does not have access to account '{account}' "
        "(or that account does not exist). Application access may have been revoked.",
        code="account_invalid",
        saved=False,
    )


def select_store(stores: Stores, livemode: bool, header: str | None, api_key: str) -> Store:
    """The store a request is served from, given its mode and ``Stripe-Account`` header."""
    platform = stores.platform(livemode)
    if header is None:
        return platform.store
    if not ACCOUNT_ID.fullmatch(header):
        raise invalid(
            f"Invalid Stripe-Account header: '{header}'. It must be the id of a connected "
            "account (acct_...).",
            param="Stripe-Account",
        )
    store = platform.store_of(header)
    if store is None:
        raise no_access(api_key, header)
    return store


def record_event(
    store: Store,
    webhooks: WebhookDispatcher,
    event_type: str,
    data: dict[str, Any],
    request: dict[str, Any],
) -> dict[str, Any]:
    """Store an event in ``store`` (lock held) and queue it for the endpoints that want it.

    Events of a connected account carry ``"account"`` and go to Connect endpoints only.
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
        pending_webhooks=webhooks.count(connect=connect, livemode=store.livemode),
        request=request,
        type=event_type,
    )
    payload = json.dumps(event).encode()
    stored: dict[str, Any] = json.loads(payload)
    store.add_event(stored)
    webhooks.enqueue(event["id"], payload, connect=connect, livemode=store.livemode)
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
        account = app.stores.platform(call.store.livemode).connect(params)
        return 200, copy.deepcopy(account)


def list_accounts(app: EmulatorApp, call: Call) -> tuple[int, Any]:
    """``GET /v1/accounts``: the connected accounts, newest first (none for a connected one)."""
    params = validate(call.params, ACCOUNT_LIST_PARAMS)
    app.expansions(params, frozenset(), prefix="data.")
    platform = app.stores.platform(call.store.livemode)
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
    return 200, _account_of(app, call.store.livemode, account_id, call.api_key)


def retrieve_own_account(app: EmulatorApp, call: Call) -> tuple[int, Any]:
    """``GET /v1/account``: the key's account, or the ``Stripe-Account`` one."""
    params = validate(call.params, COMMON_PARAMS)
    app.expansions(params, frozenset())
    account_id = call.store.account or ACCOUNT["id"]
    return 200, _account_of(app, call.store.livemode, account_id, call.api_key)


def _account_of(app: EmulatorApp, livemode: bool, account_id: str, api_key: str) -> Any:
    if account_id == ACCOUNT["id"]:
        return ACCOUNT
    with app.store.lock:
        account = app.stores.platform(livemode).accounts.get(account_id)
        if account is None:
            raise no_access(api_key, account_id)
        return copy.deepcopy(account)

"""The Stripe accounts the mirror holds, and the key that reaches each (setting ``ACCOUNTS``).

Every row, pull run and event belongs to one account and mode, ``(stripe_account, livemode)``.
``stripe_account`` is null for the own account of the first key of its mode (with one key, the
only account, as before accounts existed), and an ``acct_`` id otherwise: a connected account,
reached with its platform's key and the ``Stripe-Account`` header, or the own account of a
further key (its entry's ``ACCOUNT``). Stripe's ids are unique across accounts and modes.

``ACCOUNTS`` is a list of keys, each with what it mirrors::

    "ACCOUNTS": [
        {"API_KEY": "sk_test_...", "CONNECTED": "all"},  # its own account and every connected
        {"API_KEY": "sk_live_...", "CONNECTED": ["acct_1", "acct_2"]},
        {"API_KEY": "sk_test_other", "ACCOUNT": "acct_other"},  # an unrelated account
    ]

Without it, the one entry is ``API_KEY`` (with ``STRIPE_ACCOUNT``, that connected account only).
An ``Account`` is the context the sync engine is given: which key, which ``Stripe-Account``,
which mode, and which rows are its own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Final

from django.core.exceptions import ImproperlyConfigured

from .clients import get_client
from .conf import SETTINGS_NAME, get_setting, has_api_key, user_settings
from .stripe import StripeClient
from .stripe.ratelimit import key_mode

#: Longest account id stored (the length of the columns holding Stripe ids).
ID_LENGTH: Final = 255
#: ``CONNECTED`` of a key whose every connected account is mirrored (listed from Stripe).
ALL_CONNECTED: Final = "all"
_ENTRY_KEYS: Final = frozenset(
    {"API_KEY", "ACCOUNT", "OWN_ACCOUNT", "CONNECTED", "WEBHOOK_SECRETS", "CONNECT_WEBHOOK_SECRETS"}
)


@dataclass(frozen=True)
class Account:
    """One Stripe account in one mode, and the key that reaches it."""

    stripe_account: str | None  # as rows store it: None for the first key's own account
    livemode: bool
    connected: bool = field(default=False, compare=False)  # sent as ``Stripe-Account``
    api_key: str = field(default="", repr=False, compare=False)
    via: StripeClient | None = field(default=None, repr=False, compare=False)

    def client(self) -> StripeClient:
        """The client of its key (or the one it was given), speaking for it: shared
        connections and rate limit per key."""
        header = self.stripe_account if self.connected else None
        given = self.via or get_client(api_key=self.api_key, stripe_account=None)
        return given.for_account(header)

    def through(self, client: StripeClient | None) -> Account:
        """The same account reached through ``client`` (a test's, one not rate limited...)."""
        return self if client is None else replace(self, via=client)

    @property
    def rows(self) -> dict[str, Any]:
        """Lookup of its rows: ``Customer.objects.filter(**account.rows)``."""
        return {"stripe_account": self.stripe_account, "livemode": self.livemode}

    @property
    def mode(self) -> str:
        return "live" if self.livemode else "test"

    def __str__(self) -> str:
        return f"{self.stripe_account or 'own account'} ({self.mode})"


@dataclass(frozen=True)
class KeyEntry:
    """One item of ``ACCOUNTS``: a key and the accounts mirrored through it."""

    position: int
    api_key: str = field(repr=False)
    livemode: bool
    account_id: str | None  # its own account as rows store it (None: first key of its mode)
    own: bool  # its own account is mirrored
    connected: tuple[str, ...]
    all_connected: bool
    webhook_secrets: tuple[str, ...] = field(repr=False)
    connect_webhook_secrets: tuple[str, ...] = field(repr=False)

    @property
    def own_account(self) -> Account:
        return Account(self.account_id, self.livemode, False, self.api_key)

    def connected_account(self, stripe_account: str) -> Account:
        return Account(stripe_account, self.livemode, True, self.api_key)

    def reaches(self, stripe_account: str) -> bool:
        """Whether ``stripe_account`` is one of its connected accounts (for ``all``: any)."""
        return self.all_connected or stripe_account in self.connected

    def listed(self) -> list[Account]:
        """The accounts the settings name (``all``'s connected ones are listed from Stripe)."""
        own = [self.own_account] if self.own else []
        return own + [self.connected_account(account) for account in self.connected]


class UnknownAccount(ValueError):
    """No configured key reaches this account in this mode."""


def entries() -> tuple[KeyEntry, ...]:
    """The configured keys, checked; raises ``ImproperlyConfigured`` naming what is wrong."""
    given = user_settings().get("ACCOUNTS")
    if given is None:
        raw: list[Mapping[str, Any]] = [_implicit_entry()]
    elif isinstance(given, Sequence) and not isinstance(given, str) and given:
        raw = list(given)
    else:
        raise ImproperlyConfigured(
            f"{SETTINGS_NAME}['ACCOUNTS'] must be a non-empty list of dicts."
        )
    parsed = tuple(_entry(position, item) for position, item in enumerate(raw))
    _check_unique(parsed)
    return parsed


def default_account() -> Account:
    """Where a row created here goes unless told: the first key's own account (or, without
    it, its first connected account)."""
    first = entries()[0]
    if first.own:
        return first.own_account
    if first.connected:
        return first.connected_account(first.connected[0])
    raise ImproperlyConfigured(
        f"{SETTINGS_NAME}['ACCOUNTS'][0] mirrors neither its own account nor a listed connected "
        "account: new customers have no account to go to."
    )


def default_stripe_account() -> str | None:
    """Column default of ``Customer.stripe_account``: the default account's (None when none
    is configured: the system checks say why, and a push would)."""
    account = _default_or_none()
    return None if account is None else account.stripe_account


def default_livemode() -> bool:
    """Column default of ``Customer.livemode``: the mode of the default account."""
    account = _default_or_none()
    return False if account is None else account.livemode


def _default_or_none() -> Account | None:
    if not (has_api_key() or _has_accounts()):
        return None
    try:
        return default_account()
    except ImproperlyConfigured:
        return None


def find(stripe_account: str | None, livemode: bool) -> Account:
    """The account a row names, with the key that reaches it; raises ``UnknownAccount``."""
    for entry in entries():
        if entry.livemode != livemode:
            continue
        if entry.own and entry.account_id == stripe_account:
            return entry.own_account
        if stripe_account is not None and entry.reaches(stripe_account):
            return entry.connected_account(stripe_account)
    mode = "live" if livemode else "test"
    raise UnknownAccount(
        f"No API key in {SETTINGS_NAME}['ACCOUNTS'] reaches {stripe_account or 'the own account'} "
        f"in {mode} mode: add a {mode}-mode key for it (or list it in CONNECTED)."
    )


def listed() -> list[Account]:
    """Every account the settings name, in order (without the ones ``all`` lists)."""
    return [account for entry in entries() for account in entry.listed()]


def _implicit_entry() -> Mapping[str, Any]:
    """``ACCOUNTS`` of a project without it: ``API_KEY`` (and ``STRIPE_ACCOUNT``)."""
    stripe_account = get_setting("STRIPE_ACCOUNT")
    return {
        "API_KEY": get_setting("API_KEY"),
        "OWN_ACCOUNT": stripe_account is None,
        "CONNECTED": [stripe_account] if stripe_account else [],
        "WEBHOOK_SECRETS": get_setting("WEBHOOK_SECRETS"),
        "CONNECT_WEBHOOK_SECRETS": get_setting("CONNECT_WEBHOOK_SECRETS"),
    }


def _has_accounts() -> bool:
    return user_settings().get("ACCOUNTS") is not None


def _entry(position: int, item: Any) -> KeyEntry:
    where = f"{SETTINGS_NAME}['ACCOUNTS'][{position}]"
    if not isinstance(item, Mapping):
        raise ImproperlyConfigured(f"{where} must be a dict, not {type(item).__name__}.")
    unknown = sorted(set(item) - _ENTRY_KEYS)
    if unknown:
        raise ImproperlyConfigured(
            f"{where}: unknown key(s) {', '.join(unknown)}; "
            f"known: {', '.join(sorted(_ENTRY_KEYS))}."
        )
    api_key = item.get("API_KEY")
    if not isinstance(api_key, str) or not api_key:
        raise ImproperlyConfigured(f"{where}['API_KEY'] is missing: each entry needs its key.")
    account_id = item.get("ACCOUNT")
    if account_id is not None and not is_account_id(account_id):
        raise ImproperlyConfigured(f"{where}['ACCOUNT'] must be an acct_ id, got {account_id!r}.")
    connected = item.get("CONNECTED", [])
    all_connected = connected == ALL_CONNECTED
    if all_connected:
        connected = []
    if isinstance(connected, str) or not isinstance(connected, Sequence):
        raise ImproperlyConfigured(
            f"{where}['CONNECTED'] must be a list of acct_ ids or {ALL_CONNECTED!r}."
        )
    bad = [value for value in connected if not is_account_id(value)]
    if bad:
        raise ImproperlyConfigured(f"{where}['CONNECTED']: not an acct_ id: {bad[0]!r}.")
    return KeyEntry(
        position=position,
        api_key=api_key,
        livemode=key_mode(api_key) == "live",
        account_id=account_id,
        own=bool(item.get("OWN_ACCOUNT", True)),
        connected=tuple(dict.fromkeys(connected)),
        all_connected=all_connected,
        webhook_secrets=_secrets(where, item, "WEBHOOK_SECRETS"),
        connect_webhook_secrets=_secrets(where, item, "CONNECT_WEBHOOK_SECRETS"),
    )


def _secrets(where: str, item: Mapping[str, Any], name: str) -> tuple[str, ...]:
    value = item.get(name) or []
    values = [value] if isinstance(value, str) else list(value)
    if not all(isinstance(secret, str) and secret for secret in values):
        raise ImproperlyConfigured(f"{where}['{name}'] must be a list of whsec_ secrets.")
    return tuple(values)


def _check_unique(parsed: tuple[KeyEntry, ...]) -> None:
    """Rows name their account by ``(stripe_account, livemode)``: two keys of one mode can't
    both store theirs as null, nor claim the same account."""
    seen: dict[tuple[str | None, bool], int] = {}
    for entry in parsed:
        if not entry.own:
            continue
        key = (entry.account_id, entry.livemode)
        if key in seen:
            mode = "live" if entry.livemode else "test"
            raise ImproperlyConfigured(
                f"{SETTINGS_NAME}['ACCOUNTS'][{entry.position}] and [{seen[key]}] are both "
                f"{mode}-mode keys whose own account is stored as "
                f"{entry.account_id or 'null'}: give the later one its 'ACCOUNT' (acct_...)."
            )
        seen[key] = entry.position


def is_account_id(value: Any) -> bool:
    """Whether ``value`` is a Stripe account id as a row may store it: ``acct_`` and more,
    printable ASCII, at most ``ID_LENGTH`` characters."""
    return (
        isinstance(value, str)
        and value.startswith("acct_")
        and len("acct_") < len(value) <= ID_LENGTH
        and value.isascii()
        and value.isprintable()
    )

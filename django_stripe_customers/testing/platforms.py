"""Platforms: the accounts API keys belong to, each with its own stores in each mode.

Every key reaches the default platform (``accounts.ACCOUNT``) except the ones added with
``StripeEmulator.add_key`` (or its ``keys=``): each of those belongs to a platform of its own
(several keys may share one, as an account's test and live keys do), with its own stores
(customers, events, idempotency keys), connected accounts and webhook endpoints. No platform
sees another's data, nor reaches another's connected accounts (403 ``account_invalid``). A key's
mode is its prefix (``sk_live_``/``rk_live_``: live). Account ids, platforms' and connected
accounts' alike, are unique within a mode across platforms, as Stripe's are.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from .accounts import ACCOUNT, ACCOUNT_ID, APPLICATION, new_account, no_access, record_event
from .errors import invalid, mask_key
from .store import SortedIndex, Store
from .webhooks import WebhookDispatcher

TEST_KEY_PREFIXES: Final = ("sk_test_", "rk_test_")
LIVE_KEY_PREFIXES: Final = ("sk_live_", "rk_live_")
#: The id of the platform every key not added reaches.
DEFAULT: Final[str] = ACCOUNT["id"]


def is_key(key: str, prefixes: tuple[str, ...]) -> bool:
    """Whether ``key`` has one of ``prefixes`` and something after it."""
    return key.startswith(prefixes) and len(key) > len("sk_test_")


@dataclass
class Platform:
    """A platform in one mode: its own store, its connected accounts and their stores."""

    store: Store
    account: dict[str, Any]  # what ``GET /v1/account`` answers for it
    taken: set[str]  # every account id in use in this mode, all platforms' (shared)
    accounts: dict[str, dict[str, Any]] = field(default_factory=dict)
    index: SortedIndex = field(default_factory=SortedIndex)
    stores: dict[str, Store] = field(default_factory=dict)
    deauthorized: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return str(self.account["id"])

    def store_of(self, account: str | None) -> Store | None:
        """The store requests for ``account`` use; None if it is not connected."""
        if account is None or account == self.id:
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
            if account_id in self.taken:
                raise ValueError(f"{account_id!r} is taken by another platform")
        while account_id is None or account_id in self.taken:
            account_id = store.new_id("acct_1", 15)
        account = new_account(account_id, store.clock.now(), params)
        self.taken.add(account_id)
        self.accounts[account_id] = account
        self.index.add(account_id, account["created"])
        self.stores[account_id] = store.sibling(
            livemode=store.livemode, account=account_id, platform=store.platform
        )
        return account

    def deauthorize(self, account_id: str) -> Store:
        """Disconnect the account (its store is kept, out of reach); returns its store."""
        self.deauthorized[account_id] = self.accounts.pop(account_id)
        self.index.remove(account_id)
        return self.stores[account_id]


class Stores:
    """Every store of the emulator: each platform's in each mode, and its accounts'.

    ``keys``: the added keys, each with its platform's id; ``reset()`` goes back to the ones
    given at construction (their platforms emptied).
    """

    def __init__(self, root: Store, keys: Mapping[str, str] | None = None) -> None:
        self.root = root
        self._built = dict(keys or {})
        self.keys: dict[str, str] = {}
        self._taken: dict[bool, set[str]] = {}
        self._platforms: dict[str, dict[bool, Platform]] = {}
        self._fresh()

    def _fresh(self) -> None:
        self.keys = {}
        self._taken = {False: {DEFAULT}, True: {DEFAULT}}
        live = self.root.sibling(livemode=True, account=None)
        self._platforms = {
            DEFAULT: {
                False: Platform(self.root, ACCOUNT, self._taken[False]),
                True: Platform(live, ACCOUNT, self._taken[True]),
            }
        }
        for api_key, account_id in self._built.items():
            self.add_key(api_key, account_id)

    def reset(self) -> None:
        """Empty every store, forget every connected account and every key added since
        construction (lock held by the caller)."""
        self.root.reset()
        self._fresh()

    def add_key(self, api_key: str, account_id: str | None = None) -> str:
        """Make ``api_key`` a key of the platform ``account_id`` (lock held): a new platform,
        or an added key's; None: a new one with a random id. Returns the platform's id."""
        if not is_key(api_key, TEST_KEY_PREFIXES + LIVE_KEY_PREFIXES):
            raise ValueError(f"{mask_key(api_key)!r} is not an sk_/rk_ test or live key")
        if api_key in self.keys:
            raise ValueError(f"{mask_key(api_key)!r} is already a key of {self.keys[api_key]}")
        taken = self._taken[False] | self._taken[True]
        if account_id == DEFAULT:
            raise ValueError(f"{account_id!r} is the default platform: every other key's")
        if account_id is None:
            while account_id is None or account_id in taken:
                account_id = self.root.new_id("acct_1", 15)
        elif account_id not in self._platforms:
            if not ACCOUNT_ID.fullmatch(account_id) or account_id in taken:
                raise ValueError(f"{account_id!r} is not a free acct_ id")
        if account_id not in self._platforms:
            profile = {**copy.deepcopy(ACCOUNT), "id": account_id}
            self._platforms[account_id] = {
                livemode: Platform(
                    self.root.sibling(livemode=livemode, account=None, platform=account_id),
                    profile,
                    self._taken[livemode],
                )
                for livemode in (False, True)
            }
            for ids in self._taken.values():
                ids.add(account_id)
        self.keys[api_key] = account_id
        return account_id

    def platform(self, livemode: bool, platform: str | None = None) -> Platform:
        """A platform in a mode: ``platform`` is its id (None: the default platform)."""
        return self._platforms[platform or DEFAULT][livemode]

    def platform_of(self, api_key: str, livemode: bool) -> Platform:
        """The platform a key belongs to (the default one unless it was added)."""
        return self._platforms[self.keys.get(api_key, DEFAULT)][livemode]

    def check_platform(self, platform: str | None) -> str | None:
        """``platform`` as stores know it (None: the default platform); ValueError if it is
        not a platform's id."""
        if platform is None or platform == DEFAULT:
            return None
        if platform not in self._platforms:
            raise ValueError(f"{platform!r} is not a platform (the account of an added key)")
        return platform

    def store_for(self, account: str | None, livemode: bool) -> Store:
        """The store of ``account`` (None: the default platform's own; a platform's id: that
        platform's own; else a connected account's, deauthorized ones included)."""
        if account is None:
            return self.platform(livemode).store
        for platforms in self._platforms.values():
            platform = platforms[livemode]
            if account == platform.id:
                return platform.store
            if account in platform.stores:
                return platform.stores[account]
        mode = "live" if livemode else "test"
        raise ValueError(f"{account!r} is not an account of a platform in {mode} mode")

    def deauthorize(self, account_id: str, livemode: bool, webhooks: WebhookDispatcher) -> str:
        """Disconnect a connected account (lock held) from its platform; its
        ``account.application.deauthorized`` event goes to that platform's Connect endpoints.
        Returns the event's id."""
        for platforms in self._platforms.values():
            platform = platforms[livemode]
            if account_id in platform.accounts:
                break
        else:
            raise ValueError(f"{account_id!r} is not a connected account in this mode")
        store = platform.deauthorize(account_id)
        data = {"object": dict(APPLICATION)}
        request = {"id": None, "idempotency_key": None}
        event = record_event(store, webhooks, "account.application.deauthorized", data, request)
        return str(event["id"])

    def __iter__(self) -> Iterator[Store]:
        for platforms in self._platforms.values():
            for platform in platforms.values():
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


def select_store(stores: Stores, livemode: bool, header: str | None, api_key: str) -> Store:
    """The store a request is served from, given its key's platform, its mode and its
    ``Stripe-Account`` header."""
    platform = stores.platform_of(api_key, livemode)
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

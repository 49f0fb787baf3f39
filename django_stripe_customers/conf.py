"""The one place Django settings are read: the ``STRIPE_CUSTOMERS`` dict, env fallbacks, defaults.

Values are looked up on every access (nothing cached at import time), so ``override_settings``
and pytest-django's ``settings`` fixture take effect immediately.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Final

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from . import schema
from .stripe.ratelimit import key_mode

SETTINGS_NAME: Final = "STRIPE_CUSTOMERS"

DEFAULTS: Final[Mapping[str, Any]] = {
    # Secret key (sk_live_..., sk_test_... or a restricted rk_... key).
    "API_KEY": None,
    # Where Stripe's API lives; point it at a local Stripe for tests and the demo.
    "API_BASE": "https://api.stripe.com",
    # The API version this package's field mapping and tests are pinned to.
    "API_VERSION": schema.API_VERSION,
    # Mirror one connected account (Stripe Connect) instead of the key's own; sent as the
    # Stripe-Account header. ACCOUNTS says more: several keys, modes and connected accounts.
    "STRIPE_ACCOUNT": None,
    # The keys and the accounts mirrored through each (see ``accounts``); None: API_KEY's own
    # account (or STRIPE_ACCOUNT), as a list of one entry.
    "ACCOUNTS": None,
    # Seconds before a request to Stripe is abandoned (connect and read).
    "TIMEOUT": 30.0,
    # Retries of one request on transient failures (so MAX_RETRIES + 1 tries in all).
    "MAX_RETRIES": 2,
    # Webhook signing secrets (whsec_...); several, so a secret can be rotated without downtime.
    "WEBHOOK_SECRETS": [],
    # Signing secrets of a Connect webhook endpoint (events of the connected accounts).
    "CONNECT_WEBHOOK_SECRETS": [],
    # Maximum age, in seconds, of a webhook signature's timestamp.
    "WEBHOOK_TOLERANCE": 300,
    # Retrieve the customer fresh when processing an event instead of trusting its payload.
    "WEBHOOK_REFETCH": False,
    # Largest webhook request body accepted, in bytes (larger ones answer 413).
    "WEBHOOK_MAX_BODY": 1024 * 1024,
    # Includable attributes a pull asks Stripe to expand (Stripe omits them otherwise), so the
    # mirror holds them too; trim the list to make pulls lighter.
    "PULL_EXPAND": [
        name
        for name, spec in schema.OBJECT_ATTRIBUTES.items()
        if spec.get("expandable") and spec["type"] != "string"
    ],
    # Whether saving a Customer schedules a push to Stripe.
    "PUSH_ON_SAVE": True,
    # How pushes (and webhook events) run: "celery" (a task for your workers), "inline" (in the
    # saving process, right after the commit, in a background thread) or "auto": Celery when
    # the project has a Celery app of its own, inline otherwise.
    "PUSH_MODE": "auto",
    # The pending sweep (push_pending_task) re-enqueues rows pending for longer than this (s).
    "PUSH_SWEEP_AFTER": 60,
    # Seconds a push owns its request in flight before another may resend it (same key, so
    # safe); None: the client's worst case (TIMEOUT x tries + backoff) plus 10 s. A push whose
    # worker died on this host is taken over at once.
    "PUSH_LEASE": None,
    # Stripe's limit of requests per second for the account, every try of every request of
    # this process (or of every process sharing RATE_LIMIT_BACKEND), paced at 95% of it; None:
    # Stripe's limit for the key's mode (25 for test keys, 100 for live ones); 0: no limit.
    # A 429 slows it down for a while. Each endpoint has its own limit besides
    # (ENDPOINT_RATE_LIMITS).
    "RATE_LIMIT": None,
    # Requests per second of one endpoint ("GET /v1/customers", "POST /v1/customers/{id}"...),
    # where it differs from Stripe's default of 25 (the Search API: 20); 0 or None: none of its
    # own. The global RATE_LIMIT applies to every request besides.
    "ENDPOINT_RATE_LIMITS": {},
    # Where the rate limit's bucket lives: "local" (one per process, for its threads) or a
    # Redis URL ("redis://host:6379/0"): one bucket shared by every process and host.
    "RATE_LIMIT_BACKEND": "local",
    # Whether the row of a deleted customer (a tombstone: its id, deleted, its owner) keeps the
    # customer's last data. False erases name, email, phone, addresses, metadata... once Stripe
    # deleted it (as Customer.erase() does on request).
    "DELETED_KEEP_DATA": True,
    # What Customer.objects.for_owner(user) does with an unlinked customer that has the user's
    # email: "refuse" (raise OwnerLinkError naming it), "link" (link the one match: only where
    # emails are verified, or a person gets someone else's customer) or "ignore" (create one).
    "OWNER_EMAIL_MATCH": "refuse",
    # DRF permission classes guarding the customers API: by default Django's model permissions
    # on Customer, as in the admin (view to read, add to create, change to update and pull).
    "API_PERMISSION_CLASSES": ["django_stripe_customers.api.permissions.CustomerModelPermissions"],
}

#: Environment variables consulted when the setting is absent from ``STRIPE_CUSTOMERS``.
ENV_FALLBACKS: Final[Mapping[str, str]] = {
    "API_KEY": "STRIPE_API_KEY",
    "WEBHOOK_SECRETS": "STRIPE_WEBHOOK_SECRET",
}


def user_settings() -> Mapping[str, Any]:
    """The project's ``STRIPE_CUSTOMERS`` dict (empty when absent)."""
    value = getattr(settings, SETTINGS_NAME, None)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ImproperlyConfigured(
            f"settings.{SETTINGS_NAME} must be a dict, not {type(value).__name__}."
        )
    return value


def get_setting(name: str) -> Any:
    """Effective value of one setting: ``STRIPE_CUSTOMERS[name]``, then env fallback, then default.

    ``API_KEY`` has no usable default: asking for it when none is configured raises
    ``ImproperlyConfigured`` saying where to put it.
    """
    if name not in DEFAULTS:
        raise KeyError(f"Unknown django-stripe-customers setting {name!r}")
    configured = user_settings()
    if name in configured and configured[name] is not None:
        value = configured[name]
    elif name in ENV_FALLBACKS and os.environ.get(ENV_FALLBACKS[name]):
        value = _from_env(name, os.environ[ENV_FALLBACKS[name]])
    else:
        value = DEFAULTS[name]
    if name == "API_KEY" and not value:
        raise ImproperlyConfigured(
            f"No Stripe API key: set {SETTINGS_NAME}['API_KEY'] in your settings "
            f"or the {ENV_FALLBACKS['API_KEY']} environment variable."
        )
    return value


def has_api_key() -> bool:
    """Whether an API key is configured (without raising)."""
    try:
        get_setting("API_KEY")
    except ImproperlyConfigured:
        return False
    return True


def key_is_live() -> bool | None:
    """Whether the API key is a live-mode key (``sk_live_``, ``rk_live_``); None without a key
    or with one whose mode its prefix does not tell."""
    if not has_api_key():
        return None
    mode = key_mode(str(get_setting("API_KEY")))
    return None if mode is None else mode == "live"


def _from_env(name: str, raw: str) -> Any:
    if name == "WEBHOOK_SECRETS":
        return [secret.strip() for secret in raw.split(",") if secret.strip()]
    return raw.strip()

"""Django system checks (``manage.py check``) for the app's configuration.

Ids: ``stripe_customers.E001`` no API key, ``E002`` a publishable key where a secret key belongs,
``E003`` a setting of the wrong type; ``W001`` non-https API base outside DEBUG, ``W002`` an API
version other than the pinned one, ``W003`` unknown keys in ``STRIPE_CUSTOMERS``, ``W004`` a live
key pointed at something other than Stripe.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from django.apps import AppConfig
from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured

from . import conf, schema

STRIPE_HOST = "api.stripe.com"


@checks.register("stripe_customers")
def check_settings(app_configs: Sequence[AppConfig] | None = None, **kwargs: Any) -> list[Any]:
    try:
        configured = conf.user_settings()
    except ImproperlyConfigured as exc:
        return [checks.Error(str(exc), id="stripe_customers.E003")]
    messages: list[Any] = []
    messages += _check_unknown_keys(configured)
    messages += _check_types()
    messages += _check_api_key()
    messages += _check_api_base()
    messages += _check_api_version()
    return messages


def _check_unknown_keys(configured: Any) -> list[Any]:
    unknown = sorted(set(configured) - set(conf.DEFAULTS))
    if not unknown:
        return []
    return [
        checks.Warning(
            f"Unknown key(s) in settings.{conf.SETTINGS_NAME}: {', '.join(unknown)}.",
            hint=f"Known keys: {', '.join(sorted(conf.DEFAULTS))}.",
            id="stripe_customers.W003",
        )
    ]


def _check_types() -> list[Any]:
    errors = []
    timeout = conf.get_setting("TIMEOUT")
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        errors.append(_type_error("TIMEOUT", "a positive number of seconds", timeout))
    retries = conf.get_setting("MAX_RETRIES")
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        errors.append(_type_error("MAX_RETRIES", "an integer >= 0", retries))
    lease = conf.get_setting("PUSH_LEASE")
    if lease is not None and (
        isinstance(lease, bool) or not isinstance(lease, int | float) or lease < 0
    ):
        errors.append(_type_error("PUSH_LEASE", "None or a number of seconds >= 0", lease))
    secrets = conf.get_setting("WEBHOOK_SECRETS")
    if isinstance(secrets, str) or not all(isinstance(s, str) for s in secrets):
        errors.append(_type_error("WEBHOOK_SECRETS", "a list of strings", secrets))
    return errors


def _type_error(name: str, expected: str, value: Any) -> Any:
    return checks.Error(
        f"{conf.SETTINGS_NAME}['{name}'] must be {expected}, not {type(value).__name__}.",
        id="stripe_customers.E003",
    )


def _check_api_key() -> list[Any]:
    if not conf.has_api_key():
        return [
            checks.Error(
                "No Stripe API key is configured.",
                hint=(
                    f"Set {conf.SETTINGS_NAME}['API_KEY'] or the "
                    f"{conf.ENV_FALLBACKS['API_KEY']} environment variable to a secret key "
                    "(sk_test_... or sk_live_...)."
                ),
                id="stripe_customers.E001",
            )
        ]
    key = str(conf.get_setting("API_KEY"))
    if key.startswith("pk_"):
        return [
            checks.Error(
                "The Stripe API key is a publishable key (pk_...); the server needs a secret "
                "key (sk_...) or a restricted key (rk_...).",
                id="stripe_customers.E002",
            )
        ]
    host = urlsplit(str(conf.get_setting("API_BASE"))).hostname
    if key.startswith(("sk_live_", "rk_live_")) and host != STRIPE_HOST:
        return [
            checks.Warning(
                f"A live-mode key is configured but API_BASE points at {host!r}, not Stripe.",
                hint="A live key should only ever be sent to https://api.stripe.com.",
                id="stripe_customers.W004",
            )
        ]
    return []


def _check_api_base() -> list[Any]:
    base = str(conf.get_setting("API_BASE"))
    if urlsplit(base).scheme == "https" or settings.DEBUG:
        return []
    return [
        checks.Warning(
            f"{conf.SETTINGS_NAME}['API_BASE'] is {base!r}: not https, and DEBUG is off.",
            hint="Outside development, talk to Stripe over https (https://api.stripe.com).",
            id="stripe_customers.W001",
        )
    ]


def _check_api_version() -> list[Any]:
    version = conf.get_setting("API_VERSION")
    if version == schema.API_VERSION:
        return []
    return [
        checks.Warning(
            f"{conf.SETTINGS_NAME}['API_VERSION'] is {version!r}; this release of "
            f"django-stripe-customers is built and tested against {schema.API_VERSION!r}.",
            hint="Fields that changed between versions may be mapped wrongly.",
            id="stripe_customers.W002",
        )
    ]

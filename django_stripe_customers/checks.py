"""Django system checks (``manage.py check``) for the app's configuration.

Ids: ``stripe_customers.E001`` no API key (under ``check --deploy``; ``W005`` otherwise),
``E002`` a publishable key where a secret key belongs, ``E003`` a setting of the wrong type,
``E004`` an ``API_BASE`` that is not an http(s) URL with a host, ``E005`` the API routed without
``rest_framework`` installed, ``E006`` the webhook routed without a signing secret (under
``check --deploy``; ``W006`` otherwise), ``E008`` a Redis rate-limit backend without the
``redis`` package; ``W001`` non-https API base outside DEBUG, ``W002`` an API
version other than the pinned one, ``W003`` unknown keys in ``STRIPE_CUSTOMERS``, ``W004`` a live
key pointed at something other than Stripe.

Secrets (the API key, the webhook secret) are often injected only when the site is deployed, so
their absence is a warning for ``migrate``/``collectstatic`` and an error for ``check --deploy``;
a command that talks to Stripe without a key stops with one line saying which setting to set.
"""

from __future__ import annotations

import difflib
import importlib.util
import math
import sys
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import urlsplit

from django.apps import AppConfig, apps
from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.urls import URLResolver, get_resolver

from . import conf, ratelimits, schema
from .accounts import entries

STRIPE_HOST = "api.stripe.com"

#: The URLconfs a project includes to route the webhook and the API.
WEBHOOK_URLCONF = "django_stripe_customers.urls"
API_URLCONF = "django_stripe_customers.api.urls"

#: A message's level where a check reports a missing secret: a warning, or an error when deploying.
Level = type[checks.Warning] | type[checks.Error]


@checks.register("stripe_customers")
def check_settings(app_configs: Sequence[AppConfig] | None = None, **kwargs: Any) -> list[Any]:
    try:
        configured = conf.user_settings()
    except ImproperlyConfigured as exc:
        return [checks.Error(str(exc), id="stripe_customers.E003")]
    messages: list[Any] = []
    messages += _check_unknown_keys(configured)
    messages += _check_types()
    messages += _check_rate_limit_backend()
    messages += _check_accounts()
    messages += [] if _deploying() else _check_api_key_missing()
    messages += _check_api_key()
    messages += _check_api_base()
    messages += _check_api_version()
    return messages


@checks.register("stripe_customers", checks.Tags.urls)
def check_routes(app_configs: Sequence[AppConfig] | None = None, **kwargs: Any) -> list[Any]:
    """What the project's URLconf routes to this app needs: the API needs ``rest_framework``
    installed (its browsable pages are its templates), the webhook needs a signing secret."""
    routed = _routed_urlconfs()
    messages: list[Any] = []
    if API_URLCONF in routed and not apps.is_installed("rest_framework"):
        messages.append(
            checks.Error(
                f"{API_URLCONF} is included in the URLconf but 'rest_framework' is not in "
                "INSTALLED_APPS: the browsable API fails (500) without its templates.",
                hint="Add 'rest_framework' to INSTALLED_APPS.",
                id="stripe_customers.E005",
            )
        )
    if WEBHOOK_URLCONF in routed and _has_settings() and not _deploying():
        messages += _check_webhook_secrets(checks.Warning, "W006")
    return messages


def _deploying() -> bool:
    """Whether this run of the checks includes the deployment checks (``check --deploy``),
    which report a missing secret as an error: then its warning would say it twice.

    Django passes a check no sign of it, so this asks the frame of ``CheckRegistry.run_checks``
    up the stack for its ``include_deployment_checks`` argument (the same name in Django 4.2 to
    6.0; tests/unit/test_checks.py runs on both ends of the matrix). Not found: False, and the
    warning is reported, as before."""
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_name == "run_checks" and isinstance(
            frame.f_locals.get("self"), checks.registry.CheckRegistry
        ):
            return bool(frame.f_locals.get("include_deployment_checks"))
        frame = frame.f_back  # type: ignore[assignment]
    return False


@checks.register("stripe_customers", deploy=True)
def check_deploy(app_configs: Sequence[AppConfig] | None = None, **kwargs: Any) -> list[Any]:
    """``check --deploy``: the secrets a running site needs are errors when absent."""
    if not _has_settings():
        return []  # check_settings reports the broken STRIPE_CUSTOMERS
    messages = _missing_api_key(checks.Error, "E001")
    if WEBHOOK_URLCONF in _routed_urlconfs():
        messages += _check_webhook_secrets(checks.Error, "E006")
    return messages


def _has_settings() -> bool:
    try:
        conf.user_settings()
    except ImproperlyConfigured:
        return False
    return True


def _check_unknown_keys(configured: Any) -> list[Any]:
    unknown = sorted(set(configured) - set(conf.DEFAULTS))
    if not unknown:
        return []
    known = sorted(conf.DEFAULTS)
    guesses = [
        f"{key!r} -> {close[0]!r}"
        for key in unknown
        if (close := difflib.get_close_matches(str(key), known, n=1, cutoff=0.6))
    ]
    meant = f" Did you mean {', '.join(guesses)}?" if guesses else ""
    return [
        checks.Warning(
            f"Unknown key(s) in settings.{conf.SETTINGS_NAME}: {', '.join(map(str, unknown))}."
            f"{meant}",
            hint=f"Known keys: {', '.join(known)}.",
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
    rate = conf.get_setting("RATE_LIMIT")
    if rate is not None and (
        isinstance(rate, bool)
        or not isinstance(rate, int | float)
        or not math.isfinite(rate)
        or rate < 0
    ):
        expected = "None (the key's default), 0 (no limit) or requests per second > 0"
        errors.append(_type_error("RATE_LIMIT", expected, rate))
    secrets = conf.get_setting("WEBHOOK_SECRETS")
    if isinstance(secrets, str) or not all(isinstance(s, str) for s in secrets):
        errors.append(_type_error("WEBHOOK_SECRETS", "a list of strings", secrets))
    endpoints = conf.get_setting("ENDPOINT_RATE_LIMITS")
    if not isinstance(endpoints, dict) or not all(
        isinstance(name, str) and " /v1/" in name and _is_rate(value)
        for name, value in endpoints.items()
    ):
        expected = 'a dict of "METHOD /v1/path" to requests per second (0 or None: none)'
        errors.append(_type_error("ENDPOINT_RATE_LIMITS", expected, endpoints))
    return errors


def _is_rate(value: Any) -> bool:
    if value is None:
        return True
    return (
        not isinstance(value, bool)
        and isinstance(value, int | float)
        and math.isfinite(value)
        and value >= 0
    )


def _check_rate_limit_backend() -> list[Any]:
    backend = conf.get_setting("RATE_LIMIT_BACKEND")
    if backend == ratelimits.LOCAL:
        return []
    if not isinstance(backend, str) or not backend.startswith(ratelimits.REDIS_SCHEMES):
        return [
            checks.Error(
                f"{conf.SETTINGS_NAME}['RATE_LIMIT_BACKEND'] is {backend!r}: it must be "
                f"{ratelimits.LOCAL!r} or a Redis URL.",
                hint="'local' paces each process on its own; 'redis://127.0.0.1:6379/0' "
                "shares one bucket between every worker.",
                id="stripe_customers.E003",
            )
        ]
    if importlib.util.find_spec("redis") is None:
        return [
            checks.Error(
                f"{conf.SETTINGS_NAME}['RATE_LIMIT_BACKEND'] is a Redis URL but the redis "
                "package is not installed.",
                hint="pip install 'redis>=5', or set RATE_LIMIT_BACKEND to 'local'.",
                id="stripe_customers.E008",
            )
        ]
    return []


def _type_error(name: str, expected: str, value: Any) -> Any:
    return checks.Error(
        f"{conf.SETTINGS_NAME}['{name}'] must be {expected}, not {type(value).__name__}.",
        id="stripe_customers.E003",
    )


def _check_accounts() -> list[Any]:
    """``ACCOUNTS`` as ``accounts.entries()`` reads it: each entry's mistake, named."""
    if conf.user_settings().get("ACCOUNTS") is None:
        return []
    try:
        entries()
    except ImproperlyConfigured as exc:
        return [checks.Error(str(exc), id="stripe_customers.E009")]
    return []


def _has_key() -> bool:
    """A key to talk to Stripe with: ``API_KEY``, or the entries of ``ACCOUNTS``."""
    return conf.has_api_key() or conf.user_settings().get("ACCOUNTS") is not None


def _missing_api_key(level: Level, code: str) -> list[Any]:
    """No key: ``level`` (a warning for ``migrate`` and friends, an error under ``--deploy``)."""
    if _has_key():
        return []
    return [
        level(
            "No Stripe API key is configured: commands and tasks that talk to Stripe will fail.",
            hint=(
                f"Set {conf.SETTINGS_NAME}['API_KEY'] or the "
                f"{conf.ENV_FALLBACKS['API_KEY']} environment variable to a secret key "
                "(sk_test_... or sk_live_...). `check --deploy` reports it as an error."
            ),
            id=f"stripe_customers.{code}",
        )
    ]


def _check_api_key_missing() -> list[Any]:
    return _missing_api_key(checks.Warning, "W005")


def _check_api_key() -> list[Any]:
    if not conf.has_api_key():
        return []
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


def _check_webhook_secrets(level: Level, code: str) -> list[Any]:
    if conf.get_setting("WEBHOOK_SECRETS") or conf.get_setting("CONNECT_WEBHOOK_SECRETS"):
        return []
    if conf.user_settings().get("ACCOUNTS") is not None:
        try:
            if any(e.webhook_secrets or e.connect_webhook_secrets for e in entries()):
                return []
        except ImproperlyConfigured:  # E009 says why
            return []
    return [
        level(
            f"{WEBHOOK_URLCONF} is included in the URLconf but no webhook signing secret is "
            "configured: the endpoint refuses every event (400).",
            hint=(
                f"Set {conf.SETTINGS_NAME}['WEBHOOK_SECRETS'] or the "
                f"{conf.ENV_FALLBACKS['WEBHOOK_SECRETS']} environment variable to the endpoint's "
                "signing secret (whsec_..., in Stripe's dashboard). `check --deploy` reports it "
                "as an error."
            ),
            id=f"stripe_customers.{code}",
        )
    ]


def _api_base_problem(base: Any) -> str | None:
    """Why ``base`` cannot be the API base (None when it can): the client needs an http(s)
    URL with a host and no query, such as ``https://api.stripe.com``."""
    if not isinstance(base, str):
        return f"a string, not {type(base).__name__}"
    parts = urlsplit(base)
    if parts.scheme not in ("http", "https"):
        return "an http:// or https:// URL (the scheme is missing or another one)"
    if not parts.hostname:
        return "a URL with a host"
    try:
        parts.port  # noqa: B018  (raises ValueError for a port that is not a number)
    except ValueError:
        return "a URL whose port is a number"
    if parts.query or parts.fragment:
        return "a URL without a query or fragment"
    return None


def _check_api_base() -> list[Any]:
    base = conf.get_setting("API_BASE")
    problem = _api_base_problem(base)
    if problem is not None:
        return [
            checks.Error(
                f"{conf.SETTINGS_NAME}['API_BASE'] is {base!r}: it must be {problem}.",
                hint="Stripe's is https://api.stripe.com; a local Stripe is e.g. "
                "http://127.0.0.1:12111.",
                id="stripe_customers.E004",
            )
        ]
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


def _routed_urlconfs() -> set[str]:
    """The dotted names of the modules the project's URLconf includes, at any depth."""
    if not getattr(settings, "ROOT_URLCONF", None):
        return set()
    found: set[str] = set()
    _collect_includes(get_resolver().url_patterns, found)
    return found


def _collect_includes(patterns: Iterable[Any], found: set[str]) -> None:
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            name = getattr(pattern.urlconf_module, "__name__", None)
            if isinstance(name, str):
                found.add(name)
            _collect_includes(pattern.url_patterns, found)

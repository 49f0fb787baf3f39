"""``get_client()``: the ``StripeClient`` for the project's settings (read through ``conf``).

Settings are read on every call (so ``override_settings`` just works); clients are cached per
distinct configuration so their connection pools are reused. Every client of one key and API
base shares one rate limiter (``RATE_LIMIT``, ``ENDPOINT_RATE_LIMITS``, ``RATE_LIMIT_BACKEND``; see
``ratelimits``).
"""

from __future__ import annotations

import hashlib
import threading
from typing import Any

from .conf import get_setting
from .ratelimits import forget_limiters, limiter_for
from .stripe import StripeClient

#: Distinct configurations kept at once (e.g. one per connected account); oldest dropped first.
_MAX_CACHED = 64
_SETTINGS = {
    "api_key": "API_KEY",
    "api_base": "API_BASE",
    "api_version": "API_VERSION",
    "timeout": "TIMEOUT",
    "max_retries": "MAX_RETRIES",
    "stripe_account": "STRIPE_ACCOUNT",
}

_clients: dict[tuple[tuple[str, Any], ...], StripeClient] = {}
_clients_lock = threading.Lock()


def get_client(**overrides: Any) -> StripeClient:
    """The client for the current settings; ``overrides`` are ``StripeClient`` arguments
    (``rate_limiter=None`` for one that is not limited).

    Raises ``ImproperlyConfigured`` when no API key is configured.
    """
    options = {
        argument: get_setting(name)
        for argument, name in _SETTINGS.items()
        if argument not in overrides  # a key given (an ACCOUNTS entry's) needs no API_KEY
    }
    options.update(overrides)
    if "rate_limiter" not in options:
        options["rate_limiter"] = limiter_for(
            options["api_key"],
            options["api_base"],
            get_setting("RATE_LIMIT"),
            get_setting("RATE_LIMIT_BACKEND"),
            get_setting("ENDPOINT_RATE_LIMITS"),
        )
    # The secret is kept out of the cache key (a digest stands in) so no repr can show it.
    cache_key = tuple(
        sorted(
            (name, _digest(value) if name == "api_key" else value)
            for name, value in options.items()
        )
    )
    with _clients_lock:
        client = _clients.get(cache_key)
        if client is None:
            client = StripeClient(**options)
            if len(_clients) >= _MAX_CACHED:
                del _clients[next(iter(_clients))]
            _clients[cache_key] = client
        return client


def clear_client_cache() -> None:
    """Forget (and close) every cached client and rate limiter, e.g. after the settings
    changed."""
    with _clients_lock:
        clients = list(_clients.values())
        _clients.clear()
    forget_limiters()
    for client in clients:
        client.close()


def _digest(value: object) -> str:
    return hashlib.sha256(str(value).encode()).hexdigest()

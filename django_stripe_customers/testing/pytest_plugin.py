"""pytest plugin (entry point ``pytest11``): an offline Stripe for any test suite.

Fixtures:
- ``stripe_emulator_server`` (session): one ``StripeEmulator`` for the whole run.
- ``stripe_emulator``: that server, ``reset()`` before the test (no state leaks between tests).
- ``stripe_settings``: ``stripe_emulator`` plus ``settings.STRIPE_CUSTOMERS`` pointed at it
  (``API_KEY`` and ``API_BASE``), through pytest-django's ``settings`` fixture. Django is only
  imported here, lazily.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .emulator import StripeEmulator

EMULATOR_API_KEY = "sk_test_emulator"


@pytest.fixture(scope="session")
def stripe_emulator_server() -> Iterator[StripeEmulator]:
    """A running emulator for the session (any ``sk_test_`` key is accepted)."""
    with StripeEmulator() as emulator:
        yield emulator


@pytest.fixture
def stripe_emulator(stripe_emulator_server: StripeEmulator) -> Iterator[StripeEmulator]:
    """The session's emulator, emptied before this test."""
    stripe_emulator_server.reset()
    yield stripe_emulator_server


@pytest.fixture
def stripe_settings(
    request: pytest.FixtureRequest, stripe_emulator: StripeEmulator
) -> Iterator[StripeEmulator]:
    """``settings.STRIPE_CUSTOMERS`` pointed at ``stripe_emulator``; yields the emulator."""
    if not request.config.pluginmanager.hasplugin("django"):
        pytest.skip(
            "stripe_settings needs pytest-django (pip install pytest-django) and a configured "
            "Django settings module; use stripe_emulator for a plain offline Stripe"
        )
    settings = request.getfixturevalue("settings")
    existing = dict(getattr(settings, "STRIPE_CUSTOMERS", None) or {})
    settings.STRIPE_CUSTOMERS = {
        **existing,
        "API_KEY": stripe_emulator.api_key or EMULATOR_API_KEY,
        "API_BASE": stripe_emulator.url,
    }
    yield stripe_emulator

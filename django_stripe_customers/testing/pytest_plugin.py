"""pytest plugin (entry point ``pytest11``): an offline Stripe for any test suite.

Fixtures:
- ``stripe_emulator_server`` (session): one ``StripeEmulator`` for the whole run.
- ``stripe_emulator``: that server, ``reset()`` before the test (no state leaks between tests).
- ``stripe_settings``: ``stripe_emulator`` plus ``settings.STRIPE_CUSTOMERS`` pointed at it
  (``API_KEY`` and ``API_BASE``), through pytest-django's ``settings`` fixture. Django is only
  imported here, lazily.

Marker ``stripe_emulator``: Stripe's pace for one test (or a class, a module), with the keyword
arguments of ``StripeEmulator.set_limits``::

    @pytest.mark.stripe_emulator(latency_ms=300, rate_limit=25)
    def test_pull_stays_under_the_rate_limit(stripe_emulator): ...

    @pytest.mark.stripe_emulator(rate_limit=25, endpoint_rate_limit=25, strict_window=True)
    def test_pull_never_exceeds_25_a_second(stripe_emulator):
        ...
        assert stripe_emulator.max_in_window("GET /v1/customers") <= 25

The ``stripe_emulator`` fixture (and so ``stripe_settings``) applies it after the reset, and
resets the session's server again after the test: the next test finds no latency and no limit.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .emulator import StripeEmulator

EMULATOR_API_KEY = "sk_test_emulator"
MARKER = "stripe_emulator"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(latency_ms=0, latency_jitter_ms=0, rate_limit=None, rate_limit_burst=None, "
        "endpoint_rate_limit=None, endpoint_rate_limits=None, strict_window=False): the "
        "stripe_emulator fixture answers this test at Stripe's pace (latency in ms, rate limits "
        "in requests/s per API key and per endpoint, 429 rate_limit beyond them)",
    )


@pytest.fixture(scope="session")
def stripe_emulator_server() -> Iterator[StripeEmulator]:
    """A running emulator for the session (any ``sk_test_`` key is accepted)."""
    with StripeEmulator() as emulator:
        yield emulator


@pytest.fixture
def stripe_emulator(
    request: pytest.FixtureRequest, stripe_emulator_server: StripeEmulator
) -> Iterator[StripeEmulator]:
    """The session's emulator, emptied before this test, at the pace its marker asks for."""
    stripe_emulator_server.reset()
    marker = request.node.get_closest_marker(MARKER)
    if marker is None:
        yield stripe_emulator_server
        return
    if marker.args:
        pytest.fail(
            f"@pytest.mark.{MARKER} takes keyword arguments only (latency_ms=..., "
            f"rate_limit=...), not {marker.args!r}",
            pytrace=False,
        )
    stripe_emulator_server.set_limits(**marker.kwargs)
    try:
        yield stripe_emulator_server
    finally:
        stripe_emulator_server.reset()


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

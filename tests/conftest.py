"""Fixtures shared by every kind of test; the helpers they use live in ``tests/support/``.

The suite is laid out by what a test costs (README, "Tests"): ``unit/`` (no database, no
socket, no subprocess), ``integration/`` (Django and the local Stripe over HTTP, in this
process), ``system/`` (subprocesses: manage.py, Celery workers, gunicorn, venvs, the demo) and
``browser/`` (the admin in Chromium). Each test is marked with its folder's kind
(``-m unit``, ``-m "not system and not browser"``, ...).

- ``localstripe_server`` (session): localstripe in a subprocess on 127.0.0.1, ``.url``.
- ``localstripe`` (function): the same server, its store emptied before the test.
- ``localstripe_client``: a ``StripeClient`` pointed at it (fast retries, 5 s timeout).
- ``localstripe_settings``: pytest-django ``settings`` with ``STRIPE_CUSTOMERS`` pointed at it.
- ``stripe_backend`` (parametrized ``emulator``/``localstripe``): one of the two servers, empty,
  behind a small uniform interface (``StripeBackend``); a test using it runs once per server.
  ``EMULATOR_ONLY`` (a mark, in ``tests.support.stripe_servers``) pins a test to the emulator.
- ``fault_proxy``: a started ``FaultProxy`` in front of ``stripe_backend``; ``proxied_client``
  uses it.
- ``client``, ``admin_client`` (pytest-django's, replaced): Django's test client whose every
  request ends as a committed request would (``tests.support.http_clients``), so a test need
  not be transactional for the push its request scheduled to run.
- ``emulator_client``: a client pointed at the (reset) emulator (``stripe_emulator`` fixture from
  our pytest plugin); ``emulator_api``: raw HTTP to it (``tests.support.fidelity.client.Api``).

Under pytest-xdist every worker has its own servers (free ports), its own test database
(pytest-django's per-worker suffix) and its own temporary directories.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

import tests.support.celery_app  # noqa: F401  (makes the tests' Celery app the default one)
from tests.support.banners import BrowserSkipBanner
from tests.support.connected import connected  # noqa: F401 (the fixture, for every test)
from tests.support.faultproxy import FaultProxy
from tests.support.fidelity.client import Api
from tests.support.fidelity.report import FidelityReport
from tests.support.http_clients import CommittingClient
from tests.support.processes import stop
from tests.support.stripe_servers import (
    EMULATOR,
    LOCAL_KEY,
    LOCALSTRIPE,
    LocalStripeServer,
    StripeBackend,
    make_client,
    start_localstripe,
)

if TYPE_CHECKING:
    from django_stripe_customers.stripe import StripeClient
    from django_stripe_customers.testing import StripeEmulator

TESTS = Path(__file__).resolve().parent
KINDS = ("unit", "integration", "system", "browser")


def pytest_configure(config: pytest.Config) -> None:
    """Reports built from every test's report: in the one process, or in xdist's controller."""
    config.pluginmanager.register(FidelityReport(), "fidelity-report")
    config.pluginmanager.register(BrowserSkipBanner(), "browser-skip-banner")


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark each test with the kind of its folder (``tests/<kind>/...``), and start the slow
    ones first (after pytest-django's ordering, which it keeps among the rest), so that
    parallel workers do not end the run waiting on one that started last."""
    for item in items:
        try:
            kind = Path(item.path).resolve().relative_to(TESTS).parts[0]
        except ValueError:
            continue
        if kind in KINDS:
            item.add_marker(getattr(pytest.mark, kind))
        if config.getoption("loadgroup", False) and item.get_closest_marker("xdist_group"):
            if "@" not in item.nodeid:  # xdist marks a grouped test's id with its group
                raise pytest.UsageError(
                    f"--dist loadgroup did not group {item.nodeid}: this pytest-xdist cannot "
                    "group tests under this pytest (pytest-dev/pytest-xdist#1386), so the "
                    "module's shared fixture would be made once in every worker"
                )
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup: None, django_db_blocker: Any) -> Iterator[None]:
    """pytest-django's, and on PostgreSQL, before it drops the run's test database, the
    sessions still connected to it are named (a warning) and ended: a process or thread that
    outlived its test would otherwise make the drop fail and leave the database behind."""
    yield
    from django.db import connection

    if connection.vendor != "postgresql":
        return
    others = "FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(f"SELECT pid, backend_start, state, query {others}")
        left = cursor.fetchall()
        if left:
            cursor.execute(f"SELECT pg_terminate_backend(pid) {others}")
    for pid, started, state, query in left:
        warnings.warn(
            f"a session outlived the tests on {connection.settings_dict['NAME']}: backend "
            f"{pid} since {started:%H:%M:%S}, {state}, last query {query[:200]!r}",
            stacklevel=1,
        )


@pytest.fixture(scope="session")
def localstripe_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStripeServer]:
    server = start_localstripe(tmp_path_factory.mktemp("localstripe"))
    try:
        yield server
    finally:
        stop(server.process)


@pytest.fixture
def localstripe(localstripe_server: LocalStripeServer) -> LocalStripeServer:
    localstripe_server.flush()
    return localstripe_server


@pytest.fixture
def localstripe_client(localstripe: LocalStripeServer) -> StripeClient:
    return make_client(localstripe.url)


@pytest.fixture
def localstripe_settings(localstripe: LocalStripeServer, settings: Any) -> Any:
    settings.STRIPE_CUSTOMERS = {"API_KEY": LOCAL_KEY, "API_BASE": localstripe.url}
    return settings


@pytest.fixture(
    params=[
        pytest.param(EMULATOR, id=EMULATOR),
        pytest.param(LOCALSTRIPE, id=LOCALSTRIPE, marks=pytest.mark.localstripe),
    ]
)
def stripe_backend(request: pytest.FixtureRequest) -> StripeBackend:
    """Each server in turn, emptied before the test (only the one in use is started)."""
    if request.param == EMULATOR:
        emulator: StripeEmulator = request.getfixturevalue("stripe_emulator")
        return StripeBackend(EMULATOR, emulator.url, emulator=emulator)
    if request.param == LOCALSTRIPE:
        server: LocalStripeServer = request.getfixturevalue("localstripe")
        return StripeBackend(LOCALSTRIPE, server.url, localstripe=server)
    raise ValueError(f"unknown Stripe backend {request.param!r}")


@pytest.fixture
def fault_proxy(stripe_backend: StripeBackend) -> Iterator[FaultProxy]:
    with FaultProxy(stripe_backend.url) as proxy:
        yield proxy


@pytest.fixture
def proxied_client(fault_proxy: FaultProxy) -> StripeClient:
    return make_client(fault_proxy.url)


@pytest.fixture
def emulator_client(stripe_emulator: Any) -> StripeClient:
    """A client pointed at the (reset) Stripe emulator, with fast retries."""
    return make_client(stripe_emulator.url)


@pytest.fixture
def emulator_api(stripe_emulator: StripeEmulator) -> Iterator[Api]:
    """Plain HTTP to the (reset) emulator, bypassing our client: what any Stripe client sends."""
    client = Api(stripe_emulator.url)
    yield client
    client.close()


@pytest.fixture(autouse=True)
def no_inline_retry_timer_left() -> Iterator[None]:
    """The inline retry timer of a test (Stripe left unreachable) ends with it: it sleeps
    ``PUSH_SWEEP_AFTER`` seconds between rounds, and would wake in another test."""
    yield
    from django_stripe_customers import dispatch  # after Django is set up (pytest-django)

    dispatch.RETRIER.stop()


@pytest.fixture
def client() -> CommittingClient:
    """pytest-django's ``client``, each request ending as a committed request would."""
    return CommittingClient()


@pytest.fixture
def admin_client(db: None, admin_user: Any) -> CommittingClient:
    """pytest-django's ``admin_client``, each request ending as a committed request would."""
    client = CommittingClient()
    client.force_login(admin_user)
    return client

"""Shared fixtures: the local Stripe servers, the fault-injecting proxy, and clients.

- ``localstripe_server`` (session): localstripe in a subprocess on 127.0.0.1, ``.url``.
- ``localstripe`` (function): the same server, its store emptied before the test.
- ``localstripe_client``: a ``StripeClient`` pointed at it (fast retries, 5 s timeout).
- ``localstripe_settings``: pytest-django ``settings`` with ``STRIPE_CUSTOMERS`` pointed at it.
- ``stripe_backend`` (parametrized ``emulator``/``localstripe``): one of the two servers, empty,
  behind a small uniform interface (``StripeBackend``); a test using it runs once per server.
  ``EMULATOR_ONLY`` (a mark) pins a test to the emulator.
- ``fault_proxy``: a started ``FaultProxy`` in front of ``stripe_backend``; ``proxied_client``
  uses it.
- ``emulator_client``: a client pointed at the (reset) emulator (``stripe_emulator`` fixture from
  our pytest plugin).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import requests

import tests.celery_app  # noqa: F401  (makes the tests' Celery app the default one)
from tests.faultproxy import FaultProxy
from tests.processes import stop

if TYPE_CHECKING:
    from django_stripe_customers.stripe import StripeClient
    from django_stripe_customers.testing import StripeEmulator

LOCAL_KEY = "sk_test_local"
STARTUP_TIMEOUT = 20.0
_LAUNCHER = Path(__file__).with_name("localstripe_server.py")


@dataclass
class LocalStripeServer:
    """A running localstripe: ``url``, plus direct HTTP helpers that bypass our client."""

    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def flush(self) -> None:
        response = requests.delete(f"{self.url}/_config/data", timeout=5)
        response.raise_for_status()

    def get(self, path: str, **params: Any) -> requests.Response:
        return requests.get(
            f"{self.url}{path}",
            params=params,
            headers={"Authorization": f"Bearer {LOCAL_KEY}"},
            timeout=5,
        )

    def customer_ids(self) -> list[str]:
        """Every customer in the store (localstripe does not cap ``limit``)."""
        response = self.get("/v1/customers", limit=10_000)
        response.raise_for_status()
        return [c["id"] for c in response.json()["data"]]

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")


def _start_localstripe(state_dir: Path) -> LocalStripeServer:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    port = listener.getsockname()[1]
    log_path = state_dir / "localstripe.log"
    with listener, log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                str(_LAUNCHER),
                "--fd",
                str(listener.fileno()),
                "--state-dir",
                str(state_dir),
            ],
            pass_fds=(listener.fileno(),),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    server = LocalStripeServer(f"http://127.0.0.1:{port}", process, log_path)
    deadline = time.monotonic() + STARTUP_TIMEOUT
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"localstripe exited with status {process.returncode} before answering:\n"
                f"{server.output()}"
            )
        try:
            server.flush()
            return server
        except requests.RequestException as exc:
            last_error = exc
            time.sleep(0.1)
    stop(process)
    raise RuntimeError(
        f"localstripe did not answer within {STARTUP_TIMEOUT:g} s ({last_error}):\n"
        f"{server.output()}"
    )


@pytest.fixture(scope="session")
def localstripe_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStripeServer]:
    server = _start_localstripe(tmp_path_factory.mktemp("localstripe"))
    try:
        yield server
    finally:
        stop(server.process)


@pytest.fixture
def localstripe(localstripe_server: LocalStripeServer) -> LocalStripeServer:
    localstripe_server.flush()
    return localstripe_server


def make_client(api_base: str, api_key: str = LOCAL_KEY, **options: Any) -> StripeClient:
    """A client with test-friendly defaults: fast backoff, short timeout."""
    from django_stripe_customers.stripe import StripeClient

    defaults: dict[str, Any] = {
        "max_retries": 2,
        "initial_retry_delay": 0.01,
        "max_retry_delay": 0.05,
        "timeout": 5,
    }
    return StripeClient(api_key, api_base=api_base, **{**defaults, **options})


@pytest.fixture
def localstripe_client(localstripe: LocalStripeServer) -> StripeClient:
    return make_client(localstripe.url)


@pytest.fixture
def localstripe_settings(localstripe: LocalStripeServer, settings: Any) -> Any:
    settings.STRIPE_CUSTOMERS = {"API_KEY": LOCAL_KEY, "API_BASE": localstripe.url}
    return settings


EMULATOR = "emulator"
LOCALSTRIPE = "localstripe"


@dataclass
class StripeBackend:
    """The local Stripe a test runs against, whichever it is.

    ``name`` is ``"emulator"`` (our ``StripeEmulator``, faithful to Stripe) or ``"localstripe"``
    (an independent implementation with documented deviations); exactly one of ``emulator`` /
    ``localstripe`` is set, for what only that server can tell.
    """

    name: str
    url: str
    emulator: StripeEmulator | None = None
    localstripe: LocalStripeServer | None = None

    @property
    def is_emulator(self) -> bool:
        return self.name == EMULATOR

    def customer_ids(self) -> list[str]:
        """The ids of the customers stored and not deleted, in no particular order."""
        if self.emulator is not None:
            with self.emulator.store.lock:
                return [
                    customer_id
                    for customer_id, customer in self.emulator.customers.items()
                    if not customer.get("deleted")
                ]
        assert self.localstripe is not None
        return self.localstripe.customer_ids()


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


#: Run a test that uses ``stripe_backend`` against the emulator only (what only Stripe and the
#: emulator do, such as honouring Idempotency-Key).
EMULATOR_ONLY = pytest.mark.parametrize("stripe_backend", [EMULATOR], indirect=True)


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

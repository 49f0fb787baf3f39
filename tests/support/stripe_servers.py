"""The local Stripe servers of the tests and clients pointed at them (helpers, not fixtures).

- ``LocalStripeServer``: localstripe (PyPI, an independent implementation) in a subprocess on a
  free loopback port, with direct HTTP helpers that bypass our client.
- ``make_client``: a ``StripeClient`` with test-friendly defaults (fast backoff, short timeout).
- ``settings_through_proxy``: Django's settings pointed at a fault proxy in front of a server.
- ``StripeBackend``: the emulator or localstripe behind one small interface, for tests that run
  against each (the ``stripe_backend`` fixture); ``EMULATOR_ONLY`` pins such a test to the
  emulator.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import requests

from tests.support.faultproxy import FaultProxy
from tests.support.processes import stop

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


def start_localstripe(state_dir: Path) -> LocalStripeServer:
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


#: Run a test that uses ``stripe_backend`` against the emulator only (what only Stripe and the
#: emulator do, such as honouring Idempotency-Key).
EMULATOR_ONLY = pytest.mark.parametrize("stripe_backend", [EMULATOR], indirect=True)


@contextmanager
def settings_through_proxy(settings: Any, upstream: str, **overrides: Any) -> Iterator[FaultProxy]:
    """A started ``FaultProxy`` in front of ``upstream``, and pytest-django's ``settings``
    pointed at it (``STRIPE_CUSTOMERS['API_BASE']``, plus ``overrides``); the settings' cached
    client is dropped before and after, so no client of another test's proxy is reused."""
    from django_stripe_customers.clients import clear_client_cache

    with FaultProxy(upstream=upstream) as proxy:
        settings.STRIPE_CUSTOMERS = {
            **settings.STRIPE_CUSTOMERS,
            "API_BASE": proxy.url,
            **overrides,
        }
        clear_client_cache()
        try:
            yield proxy
        finally:
            clear_client_cache()

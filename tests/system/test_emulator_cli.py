"""``python -m django_stripe_customers.testing``: the emulator standalone (issue 4, CLI)."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.support.fidelity.client import Api

STARTUP_TIMEOUT = 20


@contextmanager
def cli(*args: str) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """Run the CLI on a free port; yield its URL once it says it listens."""
    process = subprocess.Popen(
        [sys.executable, "-m", "django_stripe_customers.testing", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    first_line: list[str] = []
    reader = threading.Thread(target=lambda: first_line.append(process.stdout.readline()))  # type: ignore[union-attr]
    reader.start()
    reader.join(STARTUP_TIMEOUT)
    try:
        match = re.search(
            r"listening on (http://127\.0\.0\.1:\d+)", first_line[0] if first_line else ""
        )
        if match is None:
            process.kill()
            pytest.fail(f"emulator CLI did not start: {first_line} {process.stderr.read()}")  # type: ignore[union-attr]
        yield match.group(1), process
    finally:
        if process.poll() is None:
            process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def test_cli_serves_seeded_customers_and_stops_cleanly() -> None:
    """``--port`` and ``--seed N``: N customers listed newest first; SIGTERM exits 0."""
    with cli("--seed", "3") as (url, process):
        body = Api(url).get("/v1/customers").json()
        assert [c["email"] for c in body["data"]] == [
            "seed3@example.com",
            "seed2@example.com",
            "seed1@example.com",
        ]
        process.terminate()
        assert process.wait(10) == 0


def test_cli_api_key() -> None:
    """``--api-key``: only that key is accepted."""
    with cli("--api-key", "sk_test_only_this") as (url, _):
        assert Api(url, "sk_test_only_this").get("/v1/customers").status_code == 200
        assert Api(url, "sk_test_another_one").get("/v1/customers").status_code == 401


def test_cli_help() -> None:
    """Issue 4: ``--port 12111 [--webhook URL --secret S] [--seed N]`` are documented."""
    result = subprocess.run(
        [sys.executable, "-m", "django_stripe_customers.testing", "--help"],
        capture_output=True,
        text=True,
        timeout=20,
        check=True,
    )
    for option in (
        "--port",
        "--webhook",
        "--secret",
        "--seed",
        "--api-key",
        "--latency-ms",
        "--latency-jitter-ms",
        "--rate-limit",
        "--rate-limit-burst",
    ):
        assert option in result.stdout


def test_cli_latency_and_rate_limit() -> None:
    """Issue 14: ``--latency-ms`` and ``--rate-limit`` (``--rate-limit-burst``) are applied: five
    concurrent requests all wait the latency, together; two fit the burst, three get 429."""
    with cli("--latency-ms", "300", "--rate-limit", "1", "--rate-limit-burst", "2") as (
        url,
        process,
    ):
        banner = [process.stdout.readline() for _ in range(2)]  # type: ignore[union-attr]
        answers: list[tuple[int, dict[str, Any], float]] = []
        lock = threading.Lock()

        def call() -> None:
            api = Api(url)
            started = time.perf_counter()
            response = api.get("/v1/customers")
            with lock:
                answers.append(
                    (response.status_code, response.json(), time.perf_counter() - started)
                )

        threads = [threading.Thread(target=call) for _ in range(5)]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(20)
        elapsed = time.perf_counter() - started
    assert "latency 300 ms; rate limit 1/s per key, burst 2" in banner[1]
    assert sorted(status for status, _, _ in answers) == [200, 200, 429, 429, 429]
    refused = [body for status, body, _ in answers if status == 429]
    assert {body["error"]["code"] for body in refused} == {"rate_limit"}
    assert all(seconds >= 0.3 for _, _, seconds in answers)
    assert elapsed < 1.2  # in parallel: ~0.3 s; one after another: 1.5 s


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (["--latency-ms", "-1"], "latency_ms must be >= 0"),
        (["--rate-limit", "0"], "rate_limit must be > 0"),
        (["--rate-limit-burst", "5"], "rate_limit_burst needs a rate_limit"),
        (["--rate-limit", "5", "--rate-limit-burst", "0"], "rate_limit_burst must be >= 1"),
    ],
)
def test_cli_refuses_impossible_limits(args: list[str], complaint: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "django_stripe_customers.testing", "--port", "0", *args],
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    assert result.returncode == 2
    assert complaint in result.stderr


def test_cli_webhook_and_secret() -> None:
    """``--webhook URL --secret S``: events POSTed to URL, signed with S."""
    received: list[tuple[str, bytes]] = []
    got_one = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((self.headers["Stripe-Signature"], body))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()
            got_one.set()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        hook = f"http://127.0.0.1:{server.server_address[1]}/hook"
        with cli("--webhook", hook, "--secret", "whsec_cli") as (url, _):
            Api(url).create_customer({"name": "cli"})
            assert got_one.wait(10)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    signature, body = received[0]
    parts = dict(item.split("=", 1) for item in signature.split(","))
    digest = hmac.new(b"whsec_cli", f"{parts['t']}.".encode() + body, hashlib.sha256).hexdigest()
    assert parts["v1"] == digest
    assert json.loads(body)["type"] == "customer.created"


def test_running_the_emulator_loads_neither_django_nor_the_client() -> None:
    """At run time too: a fresh interpreter imports the package, the plugin and the CLI module,
    serves a request and signs a webhook, and has loaded no Django and no client module."""
    script = (
        "import sys, urllib.request\n"
        "import django_stripe_customers.testing as testing\n"
        "import django_stripe_customers.testing.pytest_plugin\n"
        "import django_stripe_customers.testing.__main__\n"
        "with testing.StripeEmulator() as emulator:\n"
        "    request = urllib.request.Request(emulator.url + '/v1/customers', data=b'name=x',\n"
        "        headers={'Authorization': 'Bearer sk_test_alone'})\n"
        "    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))\n"
        "    assert opener.open(request, timeout=10).status == 200\n"
        "testing.signature_header(b'{}', 'whsec_x', 1)\n"
        "print(sorted(m for m in sys.modules if m == 'django' or m.startswith('django.')\n"
        "    or m.startswith('django_stripe_customers.stripe')))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"

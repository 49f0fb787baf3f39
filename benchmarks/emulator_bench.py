"""Requests per second the Stripe emulator serves: create, retrieve, list pages of 100.

    python benchmarks/emulator_bench.py [--seconds 2] [--in-process]

By default the emulator runs in its own process (the CLI, ``--port 0``), pinned to one CPU when
the platform allows, and one client thread drives it over one keep-alive connection on
loopback: first with ``requests.Session`` (what the project's client uses; on small machines the
client itself is the limit), then with the leaner ``http.client`` (closer to the server's own
rate). Each measurement is the best of five rounds, bounded by time and by request count.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import socket
import socketserver
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlencode, urlsplit

import requests

from django_stripe_customers.testing import StripeEmulator
from django_stripe_customers.testing.objects import new_customer, render

API_KEY = "sk_test_bench"
MAX_REQUESTS = 200_000
LIST_SEED = 1_000


def canned_answer() -> bytes:
    """A retrieve answer as the emulator sends it (same headers, same customer body)."""
    customer = render(new_customer("cus_CannedCustomer", 1_700_000_000, "0759376C"))
    body = json.dumps(customer).encode()
    head = (
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nRequest-Id: req_CannedRequest1\r\n"
        "Stripe-Version: 2026-10-28.endive\r\n\r\n"
    )
    return head.encode() + body


class _CannedHandler(socketserver.StreamRequestHandler):
    """Answers every request at once with a prepared customer: what the client alone reaches."""

    def handle(self) -> None:
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        answer = canned_answer()
        while True:
            line = self.rfile.readline(65537)
            if not line:
                return
            length = 0
            while (header := self.rfile.readline(65537)) not in (b"\r\n", b""):
                if header.lower().startswith(b"content-length:"):
                    length = int(header.split(b":")[1])
            self.rfile.read(length)
            self.wfile.write(answer)


def serve_canned() -> None:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _CannedHandler)
    server.daemon_threads = True
    print(f"canned server on http://127.0.0.1:{server.server_address[1]}", flush=True)
    server.serve_forever()


@contextmanager
def server_subprocess(command: list[str], cpu: int | None) -> Iterator[str]:
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        match = re.search(r"http://\S+", line)
        if match is None:
            raise RuntimeError(f"emulator did not start: {line!r}")
        if cpu is not None and hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(process.pid, {cpu})
        yield match.group(0)
    finally:
        process.terminate()
        process.wait(10)


@contextmanager
def emulator_in_process() -> Iterator[str]:
    with StripeEmulator() as emulator:
        emulator.seed(LIST_SEED)
        yield emulator.url


ROUNDS = 5


def rate(seconds: float, step: Callable[[int], None]) -> float:
    """Calls of ``step`` per second: the best of ROUNDS rounds sharing ``seconds`` (a shared or
    virtual machine is noisy; the best round is the closest to what the code can do)."""
    for warmup in range(20):
        step(warmup)
    count = 0
    best = 0.0
    for _ in range(ROUNDS):
        done = 0
        start = time.perf_counter()
        deadline = start + seconds / ROUNDS
        while count < MAX_REQUESTS and time.perf_counter() < deadline:
            step(count)
            count += 1
            done += 1
        best = max(best, done / (time.perf_counter() - start))
    return best


class RequestsClient:
    """The client the project's own code uses: a keep-alive ``requests.Session``."""

    name = "requests.Session"

    def __init__(self, url: str) -> None:
        self.url = url
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {API_KEY}"

    def call(self, method: str, path: str, form: dict[str, str] | None = None) -> Any:
        response = self.session.request(method, self.url + path, data=form)
        response.raise_for_status()
        return response.json()


class HttpClient:
    """A lean stdlib client (one ``http.client`` connection), to show the server's own rate."""

    name = "http.client"

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.connection = http.client.HTTPConnection(parts.hostname or "", parts.port)
        self.headers = {
            "Authorization": f"Bearer {API_KEY}",
            "Content-Type": "application/x-www-form-urlencoded",
        }

    def call(self, method: str, path: str, form: dict[str, str] | None = None) -> Any:
        body = urlencode(form) if form else None
        self.connection.request(method, path, body=body, headers=self.headers)
        response = self.connection.getresponse()
        payload = response.read()
        if response.status != 200:
            raise RuntimeError(f"{method} {path}: {response.status} {payload[:200]!r}")
        return json.loads(payload)


def run(client: RequestsClient | HttpClient, seconds: float) -> dict[str, float]:
    def create(n: int) -> None:
        form = {"email": f"bench{n}@example.com", "name": "Bench", "metadata[n]": str(n)}
        client.call("POST", "/v1/customers", form)

    customer_id = client.call("POST", "/v1/customers", {"name": "r"})["id"]

    def retrieve(n: int) -> None:
        client.call("GET", f"/v1/customers/{customer_id}")

    cursor: list[str | None] = [None]

    def list_page(n: int) -> None:
        query = f"?limit=100&starting_after={cursor[0]}" if cursor[0] else "?limit=100"
        body = client.call("GET", "/v1/customers" + query)
        cursor[0] = body["data"][-1]["id"] if body["has_more"] else None

    return {
        "create": rate(seconds, create),
        "retrieve": rate(seconds, retrieve),
        "list page of 100": rate(seconds, list_page),
    }


def ceiling(cpu: int | None, seconds: float) -> float:
    """Retrieves per second through ``requests.Session`` against the canned server."""
    command = [sys.executable, __file__, "--canned-server"]
    with server_subprocess(command, cpu) as url:
        client = RequestsClient(url)
        return rate(seconds, lambda n: client.call("GET", "/v1/customers/cus_CannedCustomer"))


def main() -> None:
    if sys.argv[1:] == ["--canned-server"]:
        serve_canned()
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="per measurement (max 30)")
    parser.add_argument("--in-process", action="store_true", help="server in this process")
    args = parser.parse_args()
    seconds = min(max(args.seconds, 0.1), 30.0)
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    server_cpu = cpus[-1] if len(cpus) > 1 else None
    if args.in_process:
        where = "in-process (shares the client's GIL)"
        context = emulator_in_process()
    else:
        pinned = f"pinned to CPU {server_cpu}" if server_cpu is not None else "not pinned"
        where = f"own process, {pinned}"
        command = [sys.executable, "-m", "django_stripe_customers.testing", "--port", "0"]
        context = server_subprocess([*command, "--seed", str(LIST_SEED)], server_cpu)
    with context as url:
        results = {
            client.name: run(client(url), seconds) for client in (RequestsClient, HttpClient)
        }
    print(f"Stripe emulator, {where}; one client thread, keep-alive, loopback")
    print(f"  {'requests/s':<18}" + "".join(f"{name:>18}" for name in results))
    for measure in ("create", "retrieve", "list page of 100"):
        print(f"  {measure:<18}" + "".join(f"{r[measure]:18.0f}" for r in results.values()))
    print(
        "  (the same retrieve through requests.Session from a server that answers at once: "
        f"{ceiling(server_cpu, seconds):.0f} requests/s, the client's own ceiling)"
    )


if __name__ == "__main__":
    main()

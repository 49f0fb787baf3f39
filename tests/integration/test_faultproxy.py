"""The fault-injecting proxy itself, checked with plain ``requests`` and raw sockets against a
small standard-library upstream that counts what reaches it."""

from __future__ import annotations

import http.server
import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.support.faultproxy import (
    AFTER,
    CONFLICT,
    DROP_RESPONSE,
    RATE_LIMIT,
    REFUSE,
    RESET,
    STALL,
    STATUS,
    FaultKind,
    FaultProxy,
)

AUTH = "Bearer sk_test_faultproxy_0123456789"


class _Upstream(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        self.hits: list[dict[str, Any]] = []
        super().__init__(("127.0.0.1", 0), _EchoHandler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _EchoHandler(http.server.BaseHTTPRequestHandler):
    """Answers 200 with what it received, as JSON, and a header of its own."""

    protocol_version = "HTTP/1.1"
    server: _Upstream

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
        hit = {
            "method": self.command,
            "path": self.path,
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "body": body,
        }
        self.server.hits.append(hit)
        payload = json.dumps(hit).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Upstream", "echo")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_POST = do_DELETE = do_GET


@pytest.fixture
def upstream() -> Iterator[_Upstream]:
    server = _Upstream()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def proxy(upstream: _Upstream) -> Iterator[FaultProxy]:
    with FaultProxy(upstream.url, socket_timeout=5) as proxy:
        yield proxy


def _raw_post(proxy: FaultProxy, timeout: float = 5) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", proxy.port), timeout=timeout)
    body = b"email=a%40example.com"
    sock.sendall(
        b"POST /v1/customers HTTP/1.1\r\nHost: x\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )
    return sock


def test_passes_requests_through_and_records_them(proxy: FaultProxy, upstream: _Upstream) -> None:
    response = requests.post(
        f"{proxy.url}/v1/customers?expand[0]=x",
        data={"metadata[k]": "v", "email": ""},
        headers={
            "Authorization": AUTH,
            "Idempotency-Key": "idem-1",
            "Stripe-Version": "2026-10-28.endive",
            "Stripe-Account": "acct_1",
            "User-Agent": "ua/1",
        },
        timeout=5,
    )
    assert response.status_code == 200
    assert response.headers["X-Upstream"] == "echo"
    assert response.headers["Connection"] == "close"
    seen = response.json()
    assert seen["method"] == "POST"
    assert seen["path"] == "/v1/customers?expand%5B0%5D=x"
    assert seen["body"] == "metadata%5Bk%5D=v&email="
    assert seen["headers"]["authorization"] == AUTH  # forwarded untouched
    assert seen["headers"]["idempotency-key"] == "idem-1"

    [record] = proxy.requests
    assert (record.method, record.path) == ("POST", "/v1/customers")
    assert record.query == "expand%5B0%5D=x"
    assert record.query_params == [("expand[0]", "x")]
    assert record.form == [("metadata[k]", "v"), ("email", "")]
    assert record.idempotency_key == "idem-1"
    assert record.stripe_version == "2026-10-28.endive"
    assert record.stripe_account == "acct_1"
    assert record.user_agent == "ua/1"
    assert record.fault is None
    assert record.forwarded and record.upstream_status == record.response_status == 200


def test_authorization_is_recorded_only_as_scheme_and_hash(proxy: FaultProxy) -> None:
    requests.get(f"{proxy.url}/v1/customers", headers={"Authorization": AUTH}, timeout=5)
    requests.get(f"{proxy.url}/v1/customers", timeout=5)
    with_auth, without_auth = proxy.requests
    assert "authorization" not in with_auth.headers
    assert "sk_test_faultproxy" not in repr(with_auth)
    assert with_auth.auth_scheme == "Bearer"
    assert with_auth.auth_is(AUTH)
    assert not with_auth.auth_is("Bearer sk_test_other")
    assert without_auth.auth_scheme is None and without_auth.auth_sha256 is None


def test_upstream_path_prefix_is_kept(upstream: _Upstream) -> None:
    with FaultProxy(f"{upstream.url}/stripe/") as proxy:
        response = requests.get(f"{proxy.url}/v1/customers/cus_1", timeout=5)
    assert response.json()["path"] == "/stripe/v1/customers/cus_1"


def test_reset_sends_rst_before_forwarding(proxy: FaultProxy, upstream: _Upstream) -> None:
    proxy.enqueue(RESET())
    with _raw_post(proxy) as sock, pytest.raises(ConnectionResetError):
        sock.recv(1024)
    with pytest.raises(requests.ConnectionError):
        proxy.enqueue(RESET())
        requests.post(f"{proxy.url}/v1/customers", timeout=5)
    assert upstream.hits == []
    assert [r.fault for r in proxy.requests] == [FaultKind.RESET, FaultKind.RESET]
    assert not any(r.forwarded for r in proxy.requests)


def test_refuse_closes_without_answering(proxy: FaultProxy, upstream: _Upstream) -> None:
    proxy.enqueue(REFUSE())
    with _raw_post(proxy) as sock:
        assert sock.recv(1024) == b""  # orderly close, nothing sent
    proxy.enqueue(REFUSE())
    with pytest.raises(requests.ConnectionError):
        requests.post(f"{proxy.url}/v1/customers", timeout=5)
    assert upstream.hits == []


def test_drop_response_forwards_then_resets(proxy: FaultProxy, upstream: _Upstream) -> None:
    proxy.enqueue(DROP_RESPONSE())
    with _raw_post(proxy) as sock, pytest.raises(ConnectionResetError):
        sock.recv(1024)
    assert len(upstream.hits) == 1  # the upstream committed
    [record] = proxy.requests
    assert record.fault is FaultKind.DROP_RESPONSE
    assert record.forwarded and record.upstream_status == 200
    assert record.response_status is None


@pytest.mark.parametrize("status", [500, 503])
def test_status_5xx_answers_stripe_api_error(
    proxy: FaultProxy, upstream: _Upstream, status: int
) -> None:
    proxy.enqueue(STATUS(status, headers={"Stripe-Should-Retry": "false"}))
    response = requests.post(f"{proxy.url}/v1/customers", timeout=5)
    assert response.status_code == status
    assert response.json()["error"]["type"] == "api_error"
    assert response.json()["error"]["message"]
    assert response.headers["Stripe-Should-Retry"] == "false"
    assert response.headers["Request-Id"].startswith("req_")
    assert upstream.hits == []
    assert proxy.requests[0].response_status == status


def test_status_400_answers_invalid_request_error(proxy: FaultProxy, upstream: _Upstream) -> None:
    proxy.enqueue(STATUS(400))
    response = requests.get(f"{proxy.url}/v1/customers", timeout=5)
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert upstream.hits == []


def test_status_with_custom_body(proxy: FaultProxy) -> None:
    body = {"error": {"type": "idempotency_error", "message": "keys reused"}}
    proxy.enqueue(STATUS(400, body=body))
    assert requests.get(f"{proxy.url}/v1/x", timeout=5).json() == body


def test_rate_limit_has_retry_after(proxy: FaultProxy, upstream: _Upstream) -> None:
    proxy.enqueue(RATE_LIMIT(retry_after=1), RATE_LIMIT(retry_after=None))
    first = requests.get(f"{proxy.url}/v1/customers", timeout=5)
    second = requests.get(f"{proxy.url}/v1/customers", timeout=5)
    assert first.status_code == second.status_code == 429
    assert first.headers["Retry-After"] == "1"
    assert "Retry-After" not in second.headers
    assert first.json()["error"]["code"] == "rate_limit"
    assert upstream.hits == []


def test_conflict_is_lock_timeout(proxy: FaultProxy, upstream: _Upstream) -> None:
    proxy.enqueue(CONFLICT())
    response = requests.post(f"{proxy.url}/v1/customers/cus_1", timeout=5)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "lock_timeout"
    assert upstream.hits == []


def test_stall_outlasts_client_timeout(proxy: FaultProxy, upstream: _Upstream) -> None:
    proxy.enqueue(STALL(2))
    started = time.monotonic()
    with pytest.raises(requests.ReadTimeout):
        requests.post(f"{proxy.url}/v1/customers", timeout=0.3)
    assert 0.25 < time.monotonic() - started < 1.5
    assert upstream.hits == []
    assert proxy.requests[0].fault is FaultKind.STALL


def test_stall_then_closes_without_answer(proxy: FaultProxy) -> None:
    proxy.enqueue(STALL(0.3))
    started = time.monotonic()
    with _raw_post(proxy) as sock:
        assert sock.recv(1024) == b""
    assert 0.25 < time.monotonic() - started < 2


def test_stall_is_capped(upstream: _Upstream) -> None:
    with FaultProxy(upstream.url, max_stall=0.2) as proxy:
        proxy.enqueue(STALL(60))
        started = time.monotonic()
        with _raw_post(proxy) as sock:
            assert sock.recv(1024) == b""
        assert time.monotonic() - started < 2


def test_faults_apply_in_order_then_pass_through(proxy: FaultProxy, upstream: _Upstream) -> None:
    proxy.enqueue(STATUS(500), CONFLICT(), STATUS(503))
    statuses = [requests.get(f"{proxy.url}/v1/c", timeout=5).status_code for _ in range(4)]
    assert statuses == [500, 409, 503, 200]
    assert proxy.pending_faults == []
    assert len(upstream.hits) == 1
    assert [r.response_status for r in proxy.requests] == statuses


def test_faults_filtered_by_method_and_path(proxy: FaultProxy) -> None:
    proxy.enqueue(STATUS(503, method="POST", path=r"/v1/customers/cus_\w+"))
    assert requests.get(f"{proxy.url}/v1/customers/cus_1", timeout=5).status_code == 200
    assert requests.post(f"{proxy.url}/v1/customers", timeout=5).status_code == 200
    assert requests.post(f"{proxy.url}/v1/customers/cus_1", timeout=5).status_code == 503
    assert requests.post(f"{proxy.url}/v1/customers/cus_1", timeout=5).status_code == 200


def test_after_lets_n_matching_requests_through_first(
    proxy: FaultProxy, upstream: _Upstream
) -> None:
    proxy.enqueue(AFTER(2, STATUS(503, method="GET")))
    assert requests.post(f"{proxy.url}/v1/customers", timeout=5).status_code == 200
    statuses = [requests.get(f"{proxy.url}/v1/customers", timeout=5).status_code for _ in range(4)]
    assert statuses == [200, 200, 503, 200]
    assert proxy.pending_faults == []
    assert len(upstream.hits) == 4
    with pytest.raises(ValueError, match="count must be >= 0"):
        AFTER(-1, REFUSE())


def test_request_id_injection(upstream: _Upstream) -> None:
    with FaultProxy(upstream.url, inject_request_id=True) as proxy:
        response = requests.get(f"{proxy.url}/v1/customers", timeout=5)
    assert response.headers["Request-Id"] == "req_faultproxy_0"


def test_body_size_is_capped(upstream: _Upstream) -> None:
    with FaultProxy(upstream.url, max_body=10) as proxy:
        response = requests.post(f"{proxy.url}/v1/customers", data=b"x" * 11, timeout=5)
        assert response.status_code == 413
        assert proxy.requests == []
    assert upstream.hits == []


def test_connections_are_capped(upstream: _Upstream) -> None:
    with FaultProxy(upstream.url, max_connections=1) as proxy:
        proxy.enqueue(STALL(5))
        with _raw_post(proxy):
            deadline = time.monotonic() + 5
            while not proxy.requests and time.monotonic() < deadline:
                time.sleep(0.01)
            with pytest.raises(requests.ConnectionError):
                requests.get(f"{proxy.url}/v1/customers", timeout=5)
            assert proxy.rejected_connections == 1
        assert len(proxy.requests) == 1


def test_upstream_down_is_502(upstream: _Upstream) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    with FaultProxy(f"http://127.0.0.1:{port}", upstream_timeout=1) as proxy:
        response = requests.get(f"{proxy.url}/v1/customers", timeout=5)
        assert response.status_code == 502
        assert "ConnectionRefusedError" in (proxy.requests[0].upstream_error or "")


def test_stop_is_prompt_with_stalled_and_idle_connections(upstream: _Upstream) -> None:
    proxy = FaultProxy(upstream.url, socket_timeout=30).start()
    port = proxy.port
    proxy.enqueue(STALL(30))
    idle = socket.create_connection(("127.0.0.1", port), timeout=5)
    stalled = _raw_post(proxy)
    deadline = time.monotonic() + 5
    while not proxy.requests and time.monotonic() < deadline:
        time.sleep(0.01)
    started = time.monotonic()
    proxy.stop()
    assert time.monotonic() - started < 2
    with idle, stalled:
        assert stalled.recv(1024) == b""
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


def test_clear_forgets_requests_and_faults(proxy: FaultProxy) -> None:
    proxy.enqueue(STATUS(500))
    requests.get(f"{proxy.url}/v1/a", timeout=5)
    proxy.enqueue(STATUS(500))
    proxy.clear()
    assert proxy.requests == [] and proxy.pending_faults == []
    assert requests.get(f"{proxy.url}/v1/a", timeout=5).status_code == 200


def test_rejects_non_http_upstream() -> None:
    with pytest.raises(ValueError, match="http://"):
        FaultProxy("https://api.stripe.com")

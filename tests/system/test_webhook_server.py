"""The webhook endpoint behind a real WSGI server (gunicorn), as Stripe reaches it.

A body sent with ``Transfer-Encoding: chunked`` carries no ``Content-Length``; Django's WSGI
request then reads nothing, so the endpoint must read what the server says is the whole body.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from django_stripe_customers.stripe.webhooks import sign_payload
from tests.support.processes import stop

ROOT = Path(__file__).resolve().parents[2]
SECRET = "whsec_tests_not_secret"  # tests/support/settings_file_db.py's WEBHOOK_SECRETS

pytestmark = [
    pytest.mark.slow,
    pytest.mark.standalone,
    # One xdist worker runs the module (``--dist loadgroup``): its gunicorn is started once.
    pytest.mark.xdist_group("webhook_server"),
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def webhook_server(tmp_path_factory):
    """gunicorn (one sync worker) serving tests.support.urls on a migrated SQLite file."""
    db = tmp_path_factory.mktemp("webhook-server") / "db.sqlite3"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "DJANGO_"))},
        "PYTHONPATH": str(ROOT),
        "DJANGO_SETTINGS_MODULE": "tests.support.settings_file_db",
        "TEST_DB_PATH": str(db),
        "CELERY_BROKER_URL": "memory://",  # no Celery app here: processing is not under test
    }
    subprocess.run(
        [sys.executable, "-m", "django", "migrate", "--noinput", "-v", "0"],
        env=env,
        check=True,
        timeout=120,
    )
    port = free_port()
    command = [
        sys.executable, "-m", "gunicorn", "django.core.wsgi:get_wsgi_application()",
        "--bind", f"127.0.0.1:{port}", "--workers", "1", "--log-level", "warning",
    ]  # fmt: skip
    server = subprocess.Popen(command, env=env, cwd=ROOT)
    url = f"http://127.0.0.1:{port}/stripe/webhook/"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:  # the port answers first; the worker may take seconds to load Django on a busy host
            requests.get(url, timeout=5)
            break
        except (requests.ConnectionError, requests.Timeout):
            time.sleep(0.1)
    try:
        yield url
    finally:
        stop(server)


def signed_event(event_id: str, **fields) -> tuple[bytes, dict[str, str]]:
    payload = {
        "id": event_id,
        "object": "event",
        "type": "customer.created",
        "api_version": "2026-10-28.endive",
        "created": int(time.time()),
        "livemode": False,
        "data": {"object": {"id": "cus_Chunked0001", "object": "customer", **fields}},
    }
    body = json.dumps(payload).encode()
    headers = {"Stripe-Signature": sign_payload(body, SECRET), "Content-Type": "application/json"}
    return body, headers


def chunks(body: bytes, size: int = 7):
    for start in range(0, len(body), size):
        yield body[start : start + size]


def test_a_chunked_body_is_read_and_applied(webhook_server):
    body, headers = signed_event("evt_chunked_1", email="chunked@example.com")

    response = requests.post(webhook_server, data=chunks(body), headers=headers, timeout=10)

    assert response.request.headers.get("Transfer-Encoding") == "chunked"
    assert "Content-Length" not in response.request.headers
    assert response.status_code == 200, response.text
    assert response.json()["received"] is True and response.json()["duplicate"] is False
    again = requests.post(webhook_server, data=chunks(body), headers=headers, timeout=10)
    assert again.json()["duplicate"] is True, "the first one was stored"


def test_a_chunked_body_over_the_limit_is_refused_with_413(webhook_server):
    body, headers = signed_event("evt_chunked_2", description="x" * (1024 * 1024))

    response = requests.post(webhook_server, data=chunks(body, 65536), headers=headers, timeout=10)

    assert response.status_code == 413


def test_a_body_with_content_length_still_works(webhook_server):
    body, headers = signed_event("evt_plain_3", email="plain@example.com")
    response = requests.post(webhook_server, data=body, headers=headers, timeout=10)
    assert response.status_code == 200, response.text

"""The emulator's Stripe Connect and live mode, over real HTTP.

Stripe's docs: the ``Stripe-Account`` header makes a request on behalf of a connected account
(its own customers, events and idempotency keys); test and live mode never share data; a key
without access to the account gets 403 ``account_invalid``; Connect events carry ``account``
and go to Connect endpoints; ``account.application.deauthorized`` when access is revoked.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from django_stripe_customers.testing import StripeEmulator
from tests.support.fidelity.client import Api

TEST_KEY = "sk_test_connect_local"
LIVE_KEY = "sk_live_connect_local"
PLATFORM_ID = "acct_1EmuLatorTestAcct"


@pytest.fixture
def emulator() -> Iterator[StripeEmulator]:
    with StripeEmulator(live_keys=True) as running:
        running.clock.set(1_700_000_000)
        yield running


@pytest.fixture
def api(emulator: StripeEmulator) -> Api:
    return Api(emulator.url, TEST_KEY)


@pytest.fixture
def live(emulator: StripeEmulator) -> Api:
    return Api(emulator.url, LIVE_KEY)


def on(account: str) -> dict[str, str]:
    return {"Stripe-Account": account}


def create_account(api: Api, **params: Any) -> dict[str, Any]:
    response = api.post("/v1/accounts", {"type": "custom", **params})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def create_customer(api: Api, account: str | None, **params: Any) -> dict[str, Any]:
    headers = on(account) if account else None
    response = api.post("/v1/customers", params, headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


@dataclass
class Receiver:
    """A local webhook endpoint that answers 200 and keeps what it got."""

    url: str = ""
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def events(self) -> list[dict[str, Any]]:
        with self.lock:
            return [json.loads(body) for _, body in self.received]


@pytest.fixture
def receivers() -> Iterator[tuple[Receiver, Receiver]]:
    """Two endpoints (one server, two paths): ``/account`` and ``/connect``."""
    account, connect = Receiver(), Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            target = connect if self.path == "/connect" else account
            with target.lock:
                target.received.append((dict(self.headers.items()), body))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    account.url, connect.url = f"{base}/account", f"{base}/connect"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield account, connect
    server.shutdown()
    server.server_close()
    thread.join(5)


def signed_with(headers: dict[str, str], body: bytes, secret: str) -> bool:
    """Stripe's scheme: ``v1`` = HMAC-SHA256 of ``"<t>.<body>"`` keyed with the secret."""
    parts = dict(item.split("=", 1) for item in headers["Stripe-Signature"].split(","))
    expected = hmac.new(secret.encode(), f"{parts['t']}.".encode() + body, hashlib.sha256)
    return hmac.compare_digest(parts["v1"], expected.hexdigest())


# -- per-account stores -------------------------------------------------------------------------


def test_a_connected_accounts_customer_is_only_in_its_store(
    emulator: StripeEmulator, api: Api
) -> None:
    a, b = create_account(api)["id"], create_account(api)["id"]
    customer = create_customer(api, a, email="a@example.com")
    path = f"/v1/customers/{customer['id']}"

    assert api.get(path, headers=on(a)).json()["email"] == "a@example.com"
    listed = api.get("/v1/customers", headers=on(a)).json()["data"]
    assert [c["id"] for c in listed] == [customer["id"]]
    assert api.get("/v1/customers", headers=on(b)).json()["data"] == []
    assert api.get("/v1/customers").json()["data"] == []

    for headers in (on(b), None):
        missing = api.get(path, headers=headers)
        assert missing.status_code == 404
        error = missing.json()["error"]
        assert error["type"] == "invalid_request_error"
        assert error["code"] == "resource_missing"
        assert error["param"] == "id"
        assert error["message"] == f"No such customer: '{customer['id']}'"
        assert api.post(path, {"name": "x"}, headers=headers).status_code == 404
        assert api.delete(path, headers=headers).status_code == 404

    assert set(emulator.customers_of(a)) == {customer["id"]}
    assert emulator.customers_of(b) == {}
    assert emulator.customers == {}
    deleted = api.delete(path, headers=on(a))
    assert deleted.json() == {"id": customer["id"], "object": "customer", "deleted": True}
    assert emulator.customers_of(a)[customer["id"]]["deleted"] is True


def test_the_same_email_in_two_accounts_is_two_customers(api: Api) -> None:
    a, b = create_account(api)["id"], create_account(api)["id"]
    first = create_customer(api, a, email="same@example.com")
    second = create_customer(api, b, email="same@example.com")
    assert first["id"] != second["id"]
    for account, expected in ((a, first["id"]), (b, second["id"])):
        found = api.get("/v1/customers", {"email": "same@example.com"}, headers=on(account))
        assert [c["id"] for c in found.json()["data"]] == [expected]


def test_the_platforms_own_id_in_the_header_is_the_platform(api: Api) -> None:
    customer = create_customer(api, PLATFORM_ID, name="Own")
    assert api.get(f"/v1/customers/{customer['id']}").json()["name"] == "Own"


def test_idempotency_keys_are_per_account(api: Api) -> None:
    a = create_account(api)["id"]
    key = {"Idempotency-Key": "idem-connect"}
    on_platform = api.post("/v1/customers", {"name": "N"}, headers=key)
    on_a = api.post("/v1/customers", {"name": "N"}, headers={**key, **on(a)})
    assert on_a.status_code == 200 and "Idempotent-Replayed" not in on_a.headers
    assert on_a.json()["id"] != on_platform.json()["id"]
    again = api.post("/v1/customers", {"name": "N"}, headers={**key, **on(a)})
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == on_a.json()["id"]


def test_seed_into_a_connected_account(emulator: StripeEmulator, api: Api) -> None:
    account = emulator.add_account(email="seeded@example.com")
    ids = emulator.seed(3, account=account)
    listed = api.get("/v1/customers", headers=on(account)).json()["data"]
    assert [c["id"] for c in listed] == ids[::-1]
    assert api.get("/v1/customers").json()["data"] == []
    assert set(emulator.customers_of(account)) == set(ids)
    with pytest.raises(ValueError, match="acct_unknown"):
        emulator.seed(1, account="acct_unknown")


# -- test and live mode -------------------------------------------------------------------------


def test_live_and_test_mode_never_share_data(emulator: StripeEmulator, api: Api, live: Api) -> None:
    live_customer = create_customer(live, None, email="live@example.com")
    test_customer = create_customer(api, None, email="test@example.com")
    assert live_customer["livemode"] is True and test_customer["livemode"] is False
    expanded = live.get(f"/v1/customers/{live_customer['id']}", {"expand": ["cash_balance"]})
    assert expanded.json()["cash_balance"]["livemode"] is True

    assert api.get(f"/v1/customers/{live_customer['id']}").status_code == 404
    assert live.get(f"/v1/customers/{test_customer['id']}").status_code == 404
    assert [c["id"] for c in live.get("/v1/customers").json()["data"]] == [live_customer["id"]]
    assert [c["id"] for c in api.get("/v1/customers").json()["data"]] == [test_customer["id"]]

    live_events = live.get("/v1/events").json()["data"]
    assert [(e["type"], e["livemode"]) for e in live_events] == [("customer.created", True)]
    assert [e["livemode"] for e in api.get("/v1/events").json()["data"]] == [False]
    assert set(emulator.customers_of(livemode=True)) == {live_customer["id"]}
    assert set(emulator.customers) == {test_customer["id"]}
    assert [e["livemode"] for e in emulator.events_of(livemode=True)] == [True]

    seeded = emulator.seed(1, livemode=True)
    assert live.get(f"/v1/customers/{seeded[0]}").json()["livemode"] is True
    error = live.get("/v1/customers/cus_missing").json()["error"]
    assert error["request_log_url"].startswith("https://dashboard.stripe.com/logs/req_")


def test_connected_accounts_are_per_mode(emulator: StripeEmulator, api: Api, live: Api) -> None:
    test_account = create_account(api)["id"]
    live_account = create_account(live)["id"]
    assert [a["id"] for a in live.get("/v1/accounts").json()["data"]] == [live_account]
    assert [a["id"] for a in api.get("/v1/accounts").json()["data"]] == [test_account]
    assert live.get("/v1/customers", headers=on(test_account)).status_code == 403
    assert api.get("/v1/customers", headers=on(live_account)).status_code == 403
    customer = create_customer(live, live_account)
    assert customer["livemode"] is True
    (event,) = live.get("/v1/events", headers=on(live_account)).json()["data"]
    assert (event["account"], event["livemode"]) == (live_account, True)
    assert set(emulator.accounts) == {test_account}
    assert set(emulator.accounts_of(livemode=True)) == {live_account}


def test_live_keys_are_refused_unless_asked_for() -> None:
    with StripeEmulator() as test_only:
        refused = Api(test_only.url, LIVE_KEY).get("/v1/customers")
        assert refused.status_code == 401
        assert Api(test_only.url, TEST_KEY).get("/v1/customers").status_code == 200


# -- accounts -----------------------------------------------------------------------------------


def test_create_and_retrieve_a_connected_account(emulator: StripeEmulator, api: Api) -> None:
    account = create_account(
        api, type="express", email="shop@example.com", country="fr", metadata={"shop": "42"}
    )
    assert re.fullmatch(r"acct_[A-Za-z0-9]{16}", account["id"])
    assert account["object"] == "account"
    assert account["created"] == 1_700_000_000
    assert (account["type"], account["email"], account["country"]) == (
        "express",
        "shop@example.com",
        "FR",
    )
    assert account["metadata"] == {"shop": "42"}
    assert account["default_currency"] == "eur"
    assert account["charges_enabled"] is False and account["details_submitted"] is False
    assert api.get(f"/v1/accounts/{account['id']}").json() == account
    assert api.get("/v1/account", headers=on(account["id"])).json() == account
    assert api.get("/v1/account").json()["id"] == PLATFORM_ID
    assert emulator.accounts[account["id"]]["email"] == "shop@example.com"

    added = emulator.add_account(type="standard", email="direct@example.com")
    fetched = api.get(f"/v1/accounts/{added}").json()
    assert (fetched["type"], fetched["email"]) == ("standard", "direct@example.com")


@pytest.mark.parametrize(
    ("params", "code", "param"),
    [
        ({}, "parameter_missing", "type"),
        ({"type": "platinum"}, None, "type"),
        ({"type": "custom", "nope": "1"}, "parameter_unknown", "nope"),
        ({"type": "custom", "country": "Freedonia"}, None, "country"),
    ],
)
def test_account_create_params_are_checked(
    api: Api, params: dict[str, str], code: str | None, param: str
) -> None:
    response = api.post("/v1/accounts", params)
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["type"], error["code"], error["param"]) == ("invalid_request_error", code, param)
    assert api.get("/v1/accounts").json()["data"] == []


def test_a_connected_account_cannot_create_accounts(api: Api) -> None:
    account = create_account(api)["id"]
    response = api.post("/v1/accounts", {"type": "custom"}, headers=on(account))
    assert response.status_code == 400
    assert "Stripe-Account" in response.json()["error"]["message"]
    assert api.get("/v1/accounts", headers=on(account)).json()["data"] == []


def test_accounts_list_pages_newest_first(emulator: StripeEmulator, api: Api) -> None:
    ids = []
    for _ in range(5):
        ids.append(create_account(api)["id"])
        emulator.clock.advance(10)
    newest_first = ids[::-1]
    first = api.get("/v1/accounts", {"limit": 2}).json()
    assert first["object"] == "list" and first["url"] == "/v1/accounts"
    assert [a["id"] for a in first["data"]] == newest_first[:2] and first["has_more"] is True
    second = api.get("/v1/accounts", {"limit": 2, "starting_after": newest_first[1]}).json()
    assert [a["id"] for a in second["data"]] == newest_first[2:4] and second["has_more"] is True
    last = api.get("/v1/accounts", {"limit": 2, "starting_after": newest_first[3]}).json()
    assert [a["id"] for a in last["data"]] == newest_first[4:] and last["has_more"] is False
    before = api.get("/v1/accounts", {"limit": 2, "ending_before": newest_first[4]}).json()
    assert [a["id"] for a in before["data"]] == newest_first[2:4]
    assert len(api.get("/v1/accounts", {"limit": 100}).json()["data"]) == 5
    for limit in (0, 101):
        assert api.get("/v1/accounts", {"limit": limit}).status_code == 400
    unknown = api.get("/v1/accounts", {"starting_after": "acct_unknown"})
    assert unknown.status_code == 400
    assert unknown.json()["error"]["message"] == "No such account: 'acct_unknown'"


# -- unknown, malformed and revoked accounts ----------------------------------------------------


def test_an_unknown_account_is_403_account_invalid(api: Api) -> None:
    for response in (
        api.get("/v1/customers", headers=on("acct_x")),
        api.post("/v1/customers", {"name": "x"}, headers=on("acct_x")),
        api.get("/v1/account", headers=on("acct_x")),
        api.get("/v1/accounts/acct_x"),
    ):
        assert response.status_code == 403
        error = response.json()["error"]
        assert error["type"] == "invalid_request_error"
        assert error["code"] == "account_invalid"
        assert error["message"] == (
            "The provided key 'sk_test_*********ocal' does not have access to account "
            "'acct_x' (or that account does not exist). Application access may have been "
            "revoked."
        )


@pytest.mark.parametrize("value", ["cus_123", "acct_", "acct_a-b", "", "platform"])
def test_a_malformed_stripe_account_header_is_400(api: Api, value: str) -> None:
    response = api.get("/v1/customers", headers=on(value))
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == "Stripe-Account"
    assert "Stripe-Account" in error["message"]


def test_deauthorize_revokes_access_and_tells_connect_endpoints(
    emulator: StripeEmulator, api: Api, receivers: tuple[Receiver, Receiver]
) -> None:
    account_hook, connect_hook = receivers
    emulator.add_webhook(account_hook.url, "whsec_account")
    connect_secret = emulator.add_webhook(connect_hook.url, "whsec_connect", connect=True)
    assert connect_secret == "whsec_connect"
    gone, kept = emulator.add_account(), emulator.add_account()
    create_customer(api, gone, name="Before")

    event_id = emulator.deauthorize(gone)

    assert emulator.wait_for_webhooks(10)
    assert api.get("/v1/customers", headers=on(gone)).status_code == 403
    assert api.get(f"/v1/accounts/{gone}").status_code == 403
    assert [a["id"] for a in api.get("/v1/accounts").json()["data"]] == [kept]
    assert set(emulator.accounts) == {kept}
    assert api.get("/v1/customers", headers=on(kept)).status_code == 200
    with pytest.raises(ValueError):
        emulator.deauthorize(gone)

    (created, deauthorized) = connect_hook.events()
    assert created["type"] == "customer.created"
    assert deauthorized["id"] == event_id
    assert deauthorized["type"] == "account.application.deauthorized"
    assert deauthorized["account"] == gone
    assert deauthorized["livemode"] is False
    application = deauthorized["data"]["object"]
    assert application["object"] == "application"
    assert application["id"].startswith("ca_") and application["name"]
    headers, body = connect_hook.received[1]
    assert signed_with(headers, body, "whsec_connect")
    assert not signed_with(headers, body, "whsec_account")
    assert account_hook.received == []
    assert emulator.events_of(gone)[-1]["type"] == "account.application.deauthorized"


# -- events and webhooks ------------------------------------------------------------------------


def test_events_carry_the_connected_account(emulator: StripeEmulator, api: Api) -> None:
    account = create_account(api)["id"]
    connected = create_customer(api, account, name="Connected")
    own = create_customer(api, None, name="Own")

    (event,) = api.get("/v1/events", headers=on(account)).json()["data"]
    assert event["account"] == account
    assert event["data"]["object"]["id"] == connected["id"]
    assert api.get(f"/v1/events/{event['id']}", headers=on(account)).json() == event
    assert api.get(f"/v1/events/{event['id']}").status_code == 404

    (platform_event,) = api.get("/v1/events").json()["data"]
    assert "account" not in platform_event
    assert platform_event["data"]["object"]["id"] == own["id"]
    assert [e["account"] for e in emulator.events_of(account)] == [account]
    assert ["account" in e for e in emulator.events] == [False]


def test_connect_and_account_endpoints_get_their_own_events_signed_with_their_own_secret(
    emulator: StripeEmulator, api: Api, receivers: tuple[Receiver, Receiver]
) -> None:
    account_hook, connect_hook = receivers
    account_secret = emulator.add_webhook(account_hook.url)
    emulator.add_webhook(account_hook.url + "?again")  # a second account endpoint
    connect_secret = emulator.add_webhook(connect_hook.url, connect=True)
    assert account_secret == emulator.webhook_secret
    assert connect_secret.startswith("whsec_") and connect_secret != account_secret
    connected_account = emulator.add_account()
    connected = create_customer(api, connected_account, name="C")
    own = create_customer(api, None, name="P")

    assert emulator.wait_for_webhooks(10)
    (to_connect,) = connect_hook.events()
    to_account, again = account_hook.events()
    assert again == to_account
    assert (to_connect["account"], to_connect["data"]["object"]["id"]) == (
        connected_account,
        connected["id"],
    )
    assert "account" not in to_account and to_account["data"]["object"]["id"] == own["id"]
    (connect_headers, connect_body) = connect_hook.received[0]
    (account_headers, account_body) = account_hook.received[0]
    assert signed_with(connect_headers, connect_body, connect_secret)
    assert not signed_with(connect_headers, connect_body, account_secret)
    assert signed_with(account_headers, account_body, account_secret)
    assert not signed_with(account_headers, account_body, connect_secret)
    assert to_connect["pending_webhooks"] == 1 and to_account["pending_webhooks"] == 2
    delivered = api.get("/v1/events", headers=on(connected_account)).json()["data"]
    assert [e["pending_webhooks"] for e in delivered] == [0]
    assert [e["pending_webhooks"] for e in api.get("/v1/events").json()["data"]] == [0]


def test_webhook_endpoints_are_per_mode(
    emulator: StripeEmulator, live: Api, api: Api, receivers: tuple[Receiver, Receiver]
) -> None:
    test_hook, live_hook = receivers
    emulator.add_webhook(test_hook.url, "whsec_test")
    emulator.add_webhook(live_hook.url, "whsec_live", livemode=True)
    create_customer(live, None, name="L")
    create_customer(api, None, name="T")
    assert emulator.wait_for_webhooks(10)
    assert [e["livemode"] for e in live_hook.events()] == [True]
    assert [e["livemode"] for e in test_hook.events()] == [False]
    assert signed_with(*live_hook.received[0], "whsec_live")


# -- rate limit, reset --------------------------------------------------------------------------


def test_requests_for_connected_accounts_spend_the_platform_keys_tokens(
    emulator: StripeEmulator, api: Api
) -> None:
    a, b = emulator.add_account(), emulator.add_account()
    emulator.set_limits(rate_limit=0.01, rate_limit_burst=3)
    statuses = [
        api.get("/v1/customers", headers=on(a)).status_code,
        api.get("/v1/customers", headers=on(b)).status_code,
        api.get("/v1/customers").status_code,
        api.get("/v1/customers", headers=on(a)).status_code,
    ]
    assert statuses == [200, 200, 200, 429]
    other_key = Api(emulator.url, "sk_test_another_key")
    assert other_key.get("/v1/customers").status_code == 200


def test_reset_forgets_accounts_and_their_data(emulator: StripeEmulator, api: Api) -> None:
    account = emulator.add_account()
    live_account = emulator.add_account(livemode=True)
    create_customer(api, account)
    emulator.reset()
    assert emulator.accounts == {} and emulator.accounts_of(livemode=True) == {}
    assert api.get("/v1/customers", headers=on(account)).status_code == 403
    with pytest.raises(ValueError):
        emulator.customers_of(account)
    with pytest.raises(ValueError):
        emulator.events_of(live_account, livemode=True)


def test_add_account_with_a_chosen_id(emulator: StripeEmulator, api: Api) -> None:
    """For code configured with a fixed ``Stripe-Account`` (settings, fixtures)."""
    assert emulator.add_account(account_id="acct_1Connected") == "acct_1Connected"
    create_customer(api, "acct_1Connected", name="Fixed")
    listed = api.get("/v1/customers", headers=on("acct_1Connected")).json()["data"]
    assert [c["name"] for c in listed] == ["Fixed"]
    for taken in ("acct_1Connected", PLATFORM_ID, "cus_1"):
        with pytest.raises(ValueError):
            emulator.add_account(account_id=taken)
    emulator.deauthorize("acct_1Connected")
    with pytest.raises(ValueError, match="deauthorized"):
        emulator.add_account(account_id="acct_1Connected")

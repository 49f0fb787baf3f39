"""The emulator's keys of other platforms (``add_key``, ``keys=``), over real HTTP.

Stripe: each secret key belongs to one account. A key added to the emulator reaches a platform
of its own, with its own customers, events, idempotency keys, connected accounts and webhook
endpoints; nothing of it is seen with another platform's key, and ``Stripe-Account`` reaches
only the key's own platform's connected accounts (else 403 ``account_invalid``).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from django_stripe_customers.testing import StripeEmulator
from tests.support.fidelity.client import Api

DEFAULT_KEY = "sk_test_default_platform"
OTHER_KEY = "sk_test_other_platform"
PLATFORM_ID = "acct_1EmuLatorTestAcct"
OTHER_ID = "acct_1OtherPlatform"


@pytest.fixture
def emulator() -> Iterator[StripeEmulator]:
    with StripeEmulator() as running:
        running.clock.set(1_700_000_000)
        yield running


@pytest.fixture
def default(emulator: StripeEmulator) -> Api:
    return Api(emulator.url, DEFAULT_KEY)


@pytest.fixture
def other(emulator: StripeEmulator) -> Api:
    assert emulator.add_key(OTHER_KEY, OTHER_ID) == OTHER_ID
    return Api(emulator.url, OTHER_KEY)


def on(account: str) -> dict[str, str]:
    return {"Stripe-Account": account}


def create(api: Api, headers: dict[str, str] | None = None, **params: Any) -> dict[str, Any]:
    response = api.post("/v1/customers", params, headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def listed(api: Api, path: str = "/v1/customers", **params: Any) -> list[str]:
    response = api.get(path, params)
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["data"]]


def own_account(api: Api) -> str:
    response = api.get("/v1/account")
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


def assert_account_invalid(response: Any, account: str) -> None:
    assert response.status_code == 403, response.text
    error = response.json()["error"]
    assert (error["type"], error["code"]) == ("invalid_request_error", "account_invalid")
    assert f"does not have access to account '{account}'" in error["message"]


# -- separate stores ----------------------------------------------------------------------------


def test_the_same_email_with_two_keys_is_two_customers_in_two_stores(
    emulator: StripeEmulator, default: Api, other: Api
) -> None:
    mine = create(default, email="same@example.com")
    theirs = create(other, email="same@example.com")

    assert mine["id"] != theirs["id"]
    assert listed(default) == [mine["id"]]
    assert listed(other) == [theirs["id"]]
    assert listed(default, email="same@example.com") == [mine["id"]]
    assert listed(other, email="same@example.com") == [theirs["id"]]
    assert set(emulator.customers) == {mine["id"]}
    assert set(emulator.customers_of(OTHER_ID)) == {theirs["id"]}
    assert set(emulator.customers_of(PLATFORM_ID)) == {mine["id"]}


@pytest.mark.parametrize("method", ["GET", "POST", "DELETE"])
def test_another_platforms_customer_is_404(default: Api, other: Api, method: str) -> None:
    theirs = create(other, name="Theirs")
    path = f"/v1/customers/{theirs['id']}"
    params = {"name": "x"} if method == "POST" else None

    missing = default.request(method, path, params)
    assert missing.status_code == 404, missing.text
    error = missing.json()["error"]
    assert (error["code"], error["param"]) == ("resource_missing", "id")
    assert error["message"] == f"No such customer: '{theirs['id']}'"
    assert other.get(path).json()["name"] == "Theirs"


def test_get_account_answers_the_keys_own_platform(default: Api, other: Api) -> None:
    assert own_account(default) == PLATFORM_ID
    assert own_account(other) == OTHER_ID
    account = other.get(f"/v1/accounts/{OTHER_ID}")
    assert account.status_code == 200 and account.json()["id"] == OTHER_ID
    assert account.json()["object"] == "account"
    assert_account_invalid(other.get(f"/v1/accounts/{PLATFORM_ID}"), PLATFORM_ID)
    assert_account_invalid(default.get(f"/v1/accounts/{OTHER_ID}"), OTHER_ID)


def test_a_random_platform_id_and_two_random_ones_differ(emulator: StripeEmulator) -> None:
    first = emulator.add_key("sk_test_first_random")
    second = emulator.add_key("rk_test_second_random")
    assert re.fullmatch(r"acct_1[A-Za-z0-9]{15}", first), first
    assert re.fullmatch(r"acct_1[A-Za-z0-9]{15}", second), second
    assert len({first, second, PLATFORM_ID}) == 3
    assert own_account(Api(emulator.url, "sk_test_first_random")) == first
    assert own_account(Api(emulator.url, "rk_test_second_random")) == second
    assert emulator.keys == {"sk_test_first_random": first, "rk_test_second_random": second}


def test_events_and_idempotency_keys_are_per_platform(
    emulator: StripeEmulator, default: Api, other: Api
) -> None:
    key = {"Idempotency-Key": "idem-platforms"}
    mine = default.post("/v1/customers", {"name": "N"}, headers=key)
    theirs = other.post("/v1/customers", {"name": "N"}, headers=key)
    assert theirs.status_code == 200 and "Idempotent-Replayed" not in theirs.headers
    assert theirs.json()["id"] != mine.json()["id"]
    again = other.post("/v1/customers", {"name": "N"}, headers=key)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == theirs.json()["id"]

    (mine_event,) = default.get("/v1/events").json()["data"]
    (their_event,) = other.get("/v1/events").json()["data"]
    assert mine_event["data"]["object"]["id"] == mine.json()["id"]
    assert their_event["data"]["object"]["id"] == theirs.json()["id"]
    assert "account" not in their_event
    assert default.get(f"/v1/events/{their_event['id']}").status_code == 404
    assert [e["id"] for e in emulator.events_of(OTHER_ID)] == [their_event["id"]]
    assert [e["id"] for e in emulator.events] == [mine_event["id"]]


def test_two_keys_of_one_platform_share_its_stores(emulator: StripeEmulator, other: Api) -> None:
    assert emulator.add_key("rk_test_other_restricted", OTHER_ID) == OTHER_ID
    restricted = Api(emulator.url, "rk_test_other_restricted")
    customer = create(other, name="Shared")
    assert listed(restricted) == [customer["id"]]
    assert own_account(restricted) == OTHER_ID


def test_seed_into_an_added_platform(emulator: StripeEmulator, default: Api, other: Api) -> None:
    ids = emulator.seed(3, account=OTHER_ID)
    assert listed(other) == ids[::-1]
    assert listed(default) == []


# -- connected accounts -------------------------------------------------------------------------


def test_connected_accounts_belong_to_their_platform(
    emulator: StripeEmulator, default: Api, other: Api
) -> None:
    response = other.post("/v1/accounts", {"type": "custom"})
    assert response.status_code == 200, response.text
    theirs = response.json()["id"]
    mine = emulator.add_account()
    chosen = emulator.add_account(platform=OTHER_ID, account_id="acct_1TheirChosen")

    assert listed(other, "/v1/accounts") == [chosen, theirs]
    assert listed(default, "/v1/accounts") == [mine]
    assert set(emulator.accounts_of(platform=OTHER_ID)) == {theirs, chosen}
    assert set(emulator.accounts) == {mine}

    customer = create(other, on(theirs), name="Connected")
    assert listed(other, "/v1/customers") == []
    assert other.get(f"/v1/customers/{customer['id']}", headers=on(theirs)).status_code == 200
    assert set(emulator.customers_of(theirs)) == {customer["id"]}
    assert own_account(Api(emulator.url, OTHER_KEY)) == OTHER_ID
    assert other.get("/v1/account", headers=on(theirs)).json()["id"] == theirs
    own = create(other, on(OTHER_ID), name="Own")  # its own id in the header: its own store
    assert listed(other) == [own["id"]]


@pytest.mark.parametrize("path", ["/v1/customers", "/v1/account", "/v1/events"])
def test_stripe_account_across_platforms_is_403(
    emulator: StripeEmulator, default: Api, other: Api, path: str
) -> None:
    mine = emulator.add_account()
    theirs = emulator.add_account(platform=OTHER_ID)
    assert_account_invalid(other.get(path, headers=on(mine)), mine)
    assert_account_invalid(default.get(path, headers=on(theirs)), theirs)
    assert_account_invalid(other.get(path, headers=on(PLATFORM_ID)), PLATFORM_ID)
    assert_account_invalid(default.get(path, headers=on(OTHER_ID)), OTHER_ID)
    assert other.get(path, headers=on(theirs)).status_code == 200
    assert default.get(path, headers=on(mine)).status_code == 200


def test_deauthorize_an_added_platforms_account(emulator: StripeEmulator, other: Api) -> None:
    theirs = emulator.add_account(platform=OTHER_ID)
    event_id = emulator.deauthorize(theirs)
    assert_account_invalid(other.get("/v1/customers", headers=on(theirs)), theirs)
    assert [e["id"] for e in emulator.events_of(theirs)] == [event_id]
    assert emulator.accounts_of(platform=OTHER_ID) == {}


def test_account_ids_are_unique_across_platforms(emulator: StripeEmulator, other: Api) -> None:
    mine = emulator.add_account(account_id="acct_1MineConnected")
    with pytest.raises(ValueError, match="taken by another platform"):
        emulator.add_account(platform=OTHER_ID, account_id=mine)
    with pytest.raises(ValueError, match="not a free acct_ id"):
        emulator.add_key("sk_test_yet_another", mine)
    with pytest.raises(ValueError, match="taken by another platform"):
        emulator.add_account(account_id=OTHER_ID)
    with pytest.raises(ValueError, match="not a platform"):
        emulator.add_account(platform=mine)


# -- modes, keys, rate limit ----------------------------------------------------------------------


def test_an_added_live_key_works_without_live_keys(emulator: StripeEmulator) -> None:
    assert emulator.add_key("sk_live_other_platform", OTHER_ID) == OTHER_ID
    live = Api(emulator.url, "sk_live_other_platform")
    customer = create(live, name="Live")
    assert customer["livemode"] is True
    assert set(emulator.customers_of(OTHER_ID, livemode=True)) == {customer["id"]}
    assert emulator.customers_of(OTHER_ID) == {}
    assert own_account(live) == OTHER_ID
    refused = Api(emulator.url, "sk_live_not_added").get("/v1/customers")
    assert refused.status_code == 401


def test_added_keys_work_beside_a_configured_api_key() -> None:
    with StripeEmulator(api_key=DEFAULT_KEY) as emulator:
        emulator.add_key(OTHER_KEY, OTHER_ID)
        assert own_account(Api(emulator.url, DEFAULT_KEY)) == PLATFORM_ID
        assert own_account(Api(emulator.url, OTHER_KEY)) == OTHER_ID
        assert Api(emulator.url, "sk_test_unknown").get("/v1/account").status_code == 401
        with pytest.raises(ValueError, match="default platform"):
            emulator.add_key(DEFAULT_KEY)
        emulator.reset()
        assert Api(emulator.url, OTHER_KEY).get("/v1/account").status_code == 401


@pytest.mark.parametrize(
    ("key", "account_id", "message"),
    [
        ("pk_test_publishable", None, "not an sk_/rk_ test or live key"),
        ("sk_test_", None, "not an sk_/rk_ test or live key"),
        (OTHER_KEY, None, "already a key of acct_1OtherPlatform"),
        ("sk_test_new", PLATFORM_ID, "the default platform"),
        ("sk_test_new", "cus_123", "not a free acct_ id"),
    ],
)
def test_add_key_refuses(
    emulator: StripeEmulator, other: Api, key: str, account_id: str | None, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        emulator.add_key(key, account_id)
    assert emulator.keys == {OTHER_KEY: OTHER_ID}


def test_each_key_has_its_own_rate_limit_bucket(
    emulator: StripeEmulator, default: Api, other: Api
) -> None:
    emulator.set_limits(rate_limit=0.01, rate_limit_burst=2)
    assert [default.get("/v1/customers").status_code for _ in range(3)] == [200, 200, 429]
    assert [other.get("/v1/customers").status_code for _ in range(3)] == [200, 200, 429]


# -- reset, constructor -------------------------------------------------------------------------


def test_reset_forgets_added_keys_and_their_platforms(emulator: StripeEmulator, other: Api) -> None:
    create(other, name="Gone")
    theirs = emulator.add_account(platform=OTHER_ID)
    emulator.reset()

    assert emulator.keys == {}
    assert own_account(other) == PLATFORM_ID  # any sk_test_ key: the default platform again
    assert listed(other) == []
    with pytest.raises(ValueError):
        emulator.customers_of(OTHER_ID)
    with pytest.raises(ValueError):
        emulator.accounts_of(platform=OTHER_ID)
    assert_account_invalid(other.get("/v1/customers", headers=on(theirs)), theirs)
    assert emulator.add_key(OTHER_KEY, OTHER_ID) == OTHER_ID  # free again


def test_keys_given_to_the_constructor_survive_reset() -> None:
    with StripeEmulator(keys={OTHER_KEY: OTHER_ID}) as emulator:
        other = Api(emulator.url, OTHER_KEY)
        create(other, name="Emptied")
        emulator.add_key("sk_test_added_later", OTHER_ID)
        emulator.reset()
        assert emulator.keys == {OTHER_KEY: OTHER_ID}
        assert own_account(other) == OTHER_ID
        assert listed(other) == [] and emulator.customers_of(OTHER_ID) == {}
        later = Api(emulator.url, "sk_test_added_later")
        assert own_account(later) == PLATFORM_ID


def test_constructor_keys_are_checked() -> None:
    with pytest.raises(ValueError, match="not a free acct_ id"):
        StripeEmulator(keys={OTHER_KEY: "not_an_account"})
    with pytest.raises(ValueError, match="default platform"):
        StripeEmulator(api_key=OTHER_KEY, keys={OTHER_KEY: OTHER_ID})


# -- webhooks -----------------------------------------------------------------------------------


@pytest.fixture
def receiver() -> Iterator[tuple[str, dict[str, list[dict[str, Any]]]]]:
    """A local endpoint answering 200; what it got, by path."""
    received: dict[str, list[dict[str, Any]]] = {}
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            with lock:
                received.setdefault(self.path, []).append(json.loads(body))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", received
    server.shutdown()
    server.server_close()
    thread.join(5)


def test_webhook_endpoints_are_per_platform(
    emulator: StripeEmulator,
    default: Api,
    other: Api,
    receiver: tuple[str, dict[str, list[dict[str, Any]]]],
) -> None:
    base, received = receiver
    default_secret = emulator.add_webhook(base + "/default")
    other_secret = emulator.add_webhook(base + "/other", platform=OTHER_ID)
    emulator.add_webhook(base + "/other-connect", connect=True, platform=OTHER_ID)
    assert other_secret.startswith("whsec_") and other_secret != default_secret
    theirs = emulator.add_account(platform=OTHER_ID)
    mine = create(default, name="Mine")
    their_own = create(other, name="Theirs")
    connected = create(other, on(theirs), name="Connected")

    assert emulator.wait_for_webhooks(10)
    assert [e["data"]["object"]["id"] for e in received["/default"]] == [mine["id"]]
    assert [e["data"]["object"]["id"] for e in received["/other"]] == [their_own["id"]]
    (to_connect,) = received["/other-connect"]
    assert (to_connect["account"], to_connect["data"]["object"]["id"]) == (theirs, connected["id"])
    with pytest.raises(ValueError, match="not a platform"):
        emulator.add_webhook(base + "/nowhere", platform="acct_1NoSuchPlatform")

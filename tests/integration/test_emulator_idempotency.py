"""Idempotency-Key as Stripe does it.

README (shared/stripe): "``Idempotency-Key`` (up to 255 characters) makes a POST safe to
retry: the same key with the same parameters returns the first result, the same key with
different parameters is an ``idempotency_error``; keys expire after 24 hours."
"""

from __future__ import annotations

import threading
from typing import Any

import requests

from django_stripe_customers.testing import StripeEmulator
from tests.support.fidelity.client import Api


def post(emulator_api: Api, path: str, params: Any, key: str) -> requests.Response:
    return emulator_api.post(path, params, headers={"Idempotency-Key": key})


def test_same_key_same_params_replays_the_first_answer(
    stripe_emulator: StripeEmulator, emulator_api: Api
) -> None:
    """README: "the same key with the same parameters returns the first result"."""
    first = post(emulator_api, "/v1/customers", {"email": "a@example.com"}, "k1")
    again = post(emulator_api, "/v1/customers", {"email": "a@example.com"}, "k1")
    assert first.status_code == again.status_code == 200
    assert again.content == first.content
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.headers["Original-Request"] == first.headers["Request-Id"]
    assert again.headers["Request-Id"] != first.headers["Request-Id"]
    assert "Idempotent-Replayed" not in first.headers
    assert first.headers["Idempotency-Key"] == "k1"
    assert len(stripe_emulator.customers) == 1
    assert len(stripe_emulator.events) == 1


def test_param_order_does_not_matter(emulator_api: Api) -> None:
    """The same parameters, whatever their order on the wire."""
    first = post(emulator_api, "/v1/customers", [("email", "a@example.com"), ("name", "A")], "k")
    again = post(emulator_api, "/v1/customers", [("name", "A"), ("email", "a@example.com")], "k")
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.json()["id"] == first.json()["id"]


def test_same_key_different_params_is_an_idempotency_error(emulator_api: Api) -> None:
    """README: "the same key with different parameters is an ``idempotency_error``"."""
    post(emulator_api, "/v1/customers", {"email": "a@example.com"}, "k2")
    response = post(emulator_api, "/v1/customers", {"email": "b@example.com"}, "k2")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "idempotency_error"
    assert error["message"] == (
        "Keys for idempotent requests can only be used with the same parameters they were "
        "first used with. Try using a key other than 'k2' if you meant to execute a different "
        "request."
    )


def test_same_key_on_another_endpoint_is_an_idempotency_error(emulator_api: Api) -> None:
    """The key is bound to the endpoint it was first used for, too."""
    customer = post(emulator_api, "/v1/customers", {}, "k3").json()
    response = post(emulator_api, f"/v1/customers/{customer['id']}", {}, "k3")
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "idempotency_error"
    assert "same endpoint" in response.json()["error"]["message"]


def test_updates_are_idempotent_too(stripe_emulator: StripeEmulator, emulator_api: Api) -> None:
    """ "All POST requests accept idempotency keys" - an update replays, no second event."""
    customer = emulator_api.create_customer({"name": "a"})
    path = f"/v1/customers/{customer['id']}"
    first = post(emulator_api, path, {"name": "b"}, "u1")
    emulator_api.post(path, {"name": "c"})
    again = post(emulator_api, path, {"name": "b"}, "u1")
    assert again.json() == first.json()
    assert again.json()["name"] == "b"
    assert [e["type"] for e in stripe_emulator.events].count("customer.updated") == 2


def test_keys_are_scoped_to_the_api_key(stripe_emulator: StripeEmulator) -> None:
    """One account's key never replays another's request."""
    one, other = Api(stripe_emulator.url, "sk_test_one"), Api(stripe_emulator.url, "sk_test_two")
    a = post(one, "/v1/customers", {"email": "a@example.com"}, "shared")
    b = post(other, "/v1/customers", {"email": "a@example.com"}, "shared")
    assert a.json()["id"] != b.json()["id"]
    assert "Idempotent-Replayed" not in b.headers


def test_validation_errors_are_not_saved(emulator_api: Api) -> None:
    """Stripe: "results are only saved if an API endpoint started executing"; a request
    refused by parameter validation can be retried with the same key."""
    bad = post(emulator_api, "/v1/customers", {"email": "x" * 600}, "k4")
    assert bad.status_code == 400
    good = post(emulator_api, "/v1/customers", {"email": "ok@example.com"}, "k4")
    assert good.status_code == 200
    assert "Idempotent-Replayed" not in good.headers


def test_errors_after_execution_began_are_replayed(emulator_api: Api) -> None:
    """ "regardless of whether it succeeds or fails": a 404 is saved and replayed."""
    first = post(emulator_api, "/v1/customers/cus_missing", {"name": "x"}, "k5")
    again = post(emulator_api, "/v1/customers/cus_missing", {"name": "x"}, "k5")
    assert first.status_code == again.status_code == 404
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()


def test_keys_expire_after_24_hours(stripe_emulator: StripeEmulator, emulator_api: Api) -> None:
    """README: "keys expire after 24 hours" (of the emulator's clock)."""
    stripe_emulator.clock.set(1_000_000)
    first = post(emulator_api, "/v1/customers", {}, "k6")
    stripe_emulator.clock.advance(24 * 3600 - 1)
    assert post(emulator_api, "/v1/customers", {}, "k6").json()["id"] == first.json()["id"]
    stripe_emulator.clock.advance(1)
    fresh = post(emulator_api, "/v1/customers", {}, "k6")
    assert fresh.json()["id"] != first.json()["id"]
    assert "Idempotent-Replayed" not in fresh.headers


def test_key_longer_than_255_is_refused(emulator_api: Api) -> None:
    """README: "``Idempotency-Key`` (up to 255 characters)"."""
    assert post(emulator_api, "/v1/customers", {}, "k" * 255).status_code == 200
    assert post(emulator_api, "/v1/customers", {}, "k" * 256).status_code == 400


def test_keys_on_get_are_ignored(emulator_api: Api) -> None:
    """README: the key "makes a POST safe to retry"; GETs are safe already."""
    emulator_api.create_customer()
    first = emulator_api.get("/v1/customers", headers={"Idempotency-Key": "g"})
    again = emulator_api.get("/v1/customers", {"limit": 1}, headers={"Idempotency-Key": "g"})
    assert first.status_code == again.status_code == 200
    assert "Idempotent-Replayed" not in again.headers


def test_concurrent_requests_with_one_key_execute_once(stripe_emulator: StripeEmulator) -> None:
    """Issue 4: "Concurrent requests with the same key must not both execute"."""
    results: list[requests.Response] = []
    lock = threading.Lock()
    barrier = threading.Barrier(12)

    def worker() -> None:
        emulator_api = Api(stripe_emulator.url)
        barrier.wait(5)
        response = post(emulator_api, "/v1/customers", {"email": "race@example.com"}, "race")
        with lock:
            results.append(response)

    threads = [threading.Thread(target=worker) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(results) == 12
    assert {r.status_code for r in results} == {200}
    assert len({r.json()["id"] for r in results}) == 1
    assert sum(r.headers.get("Idempotent-Replayed") == "true" for r in results) == 11
    assert len(stripe_emulator.customers) == 1

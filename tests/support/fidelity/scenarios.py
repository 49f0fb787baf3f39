"""The fidelity scenarios: Stripe calls written once, run against each local Stripe.

Each scenario is a function of an ``Api`` (plain ``requests``) and a ``Checks`` recorder, and
declares the servers it runs on. A check that a server is known to get wrong names that
server in ``deviates``: there it is evaluated and reported (``deviates``, or ``agrees`` if the
server got better), never failed. Sources of each rule are cited in the docstrings:
``schema.X`` is the generated data from ``shared/stripe/customer.json``; quotes are from
``shared/stripe/customers-api-reference.txt`` or ``shared/stripe/README.md``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django_stripe_customers import schema
from django_stripe_customers.testing.objects import DEFAULT_ATTRIBUTES

from .client import Api, form_pairs

EMULATOR = "emulator"
LOCALSTRIPE = "localstripe"
SERVERS = (EMULATOR, LOCALSTRIPE)

ID_SHAPE = re.compile(r"cus_[A-Za-z0-9]{14}")

Record = Callable[[str, str, str, str, str], None]


class Checks:
    """Evaluates and records the checks of one scenario on one server."""

    def __init__(self, scenario: str, server: str, record: Record) -> None:
        self.scenario = scenario
        self.server = server
        self._record = record

    def check(
        self,
        name: str,
        condition: Callable[[], Any],
        *,
        deviates: Mapping[str, str] | None = None,
        detail: Callable[[], Any] | None = None,
    ) -> None:
        note = (deviates or {}).get(self.server)
        try:
            passed = bool(condition())
            error = ""
        except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
            passed, error = False, f"{type(exc).__name__}: {exc}"
        if note is not None:
            outcome = "agrees" if passed else "deviates"
            self._record(self.scenario, name, self.server, outcome, note)
            return
        self._record(self.scenario, name, self.server, "pass" if passed else "FAIL", error)
        if not passed:
            shown = detail() if detail is not None else error
            raise AssertionError(f"{self.scenario} / {name} on {self.server}: {shown}")


@dataclass(frozen=True)
class Scenario:
    name: str
    run: Callable[[Api, Checks], None]
    servers: tuple[str, ...] = SERVERS
    not_on: Mapping[str, str] = field(default_factory=dict)


def _error(response: Any) -> dict[str, Any]:
    error: dict[str, Any] = response.json()["error"]
    return error


# -- data -----------------------------------------------------------------------------------

ADDRESS = {
    "city": "Paris",
    "country": "FR",
    "line1": "1 rue de Rivoli",
    "line2": "Apt 2",
    "postal_code": "75001",
    "state": "IDF",
}

#: One valid value for every create parameter of ``schema.CREATE_PARAMS``.
CREATE_SAMPLE: dict[str, Any] = {
    "address": ADDRESS,
    "balance": 1500,
    "business_name": "Rosen SAS",
    "cash_balance": {"settings": {"reconciliation_mode": "manual"}},
    "description": "Created with every writable parameter",
    "email": "jennyrosen@example.com",
    "individual_name": "Jenny Rosen",
    "invoice_prefix": "ROSEN",
    "invoice_settings": {
        "custom_fields": [{"name": "PO", "value": "6735"}],
        "default_payment_method": "pm_card_visa",
        "footer": "Thank you",
        "rendering_options": {"amount_tax_display": "exclude_tax", "template": "inrtem_1"},
    },
    "metadata": {"order_id": "6735"},
    "name": "Jenny Rosen",
    "next_invoice_sequence": 7,
    "payment_method": "pm_card_visa",
    "phone": "+33123456789",
    "preferred_locales": ["fr", "en"],
    "shipping": {"address": ADDRESS, "name": "Jenny Rosen", "phone": "+33123456789"},
    "source": "tok_visa",
    "tax": {"ip_address": "203.0.113.7", "validate_location": "deferred"},
    "tax_exempt": "reverse",
    "tax_id_data": [{"type": "eu_vat", "value": "FR12345678901"}],
    "test_clock": "clock_1Emulator",
    "validate": True,
}

#: How each attribute written by ``CREATE_SAMPLE`` reads back (``expand[]`` for includables).
CREATE_EXPECTED: dict[str, Callable[[dict[str, Any]], Any]] = {
    "address": lambda c: c["address"] == ADDRESS,
    "balance": lambda c: c["balance"] == 1500,
    "business_name": lambda c: c["business_name"] == "Rosen SAS",
    "cash_balance": lambda c: (
        c["cash_balance"]["settings"]
        == {"reconciliation_mode": "manual", "using_merchant_default": False}
    ),
    "description": lambda c: c["description"] == CREATE_SAMPLE["description"],
    "email": lambda c: c["email"] == "jennyrosen@example.com",
    "individual_name": lambda c: c["individual_name"] == "Jenny Rosen",
    "invoice_prefix": lambda c: c["invoice_prefix"] == "ROSEN",
    "invoice_settings": lambda c: c["invoice_settings"] == CREATE_SAMPLE["invoice_settings"],
    "metadata": lambda c: c["metadata"] == {"order_id": "6735"},
    "name": lambda c: c["name"] == "Jenny Rosen",
    "next_invoice_sequence": lambda c: c["next_invoice_sequence"] == 7,
    # Attached to the customer by Stripe, not an attribute of it: accepted, nothing to read.
    "payment_method": lambda c: "payment_method" not in c,
    "phone": lambda c: c["phone"] == "+33123456789",
    "preferred_locales": lambda c: c["preferred_locales"] == ["fr", "en"],
    "shipping": lambda c: c["shipping"] == CREATE_SAMPLE["shipping"],
    "source": lambda c: (
        c["default_source"] == "tok_visa"
        and [s["id"] for s in c["sources"]["data"]] == ["tok_visa"]
    ),
    "tax": lambda c: c["tax"]["ip_address"] == "203.0.113.7",
    "tax_exempt": lambda c: c["tax_exempt"] == "reverse",
    "tax_id_data": lambda c: (
        [(t["type"], t["value"]) for t in c["tax_ids"]["data"]] == [("eu_vat", "FR12345678901")]
    ),
    "test_clock": lambda c: c["test_clock"] == "clock_1Emulator",
    "validate": lambda c: "validate" not in c,
}

LOCALSTRIPE_SHAPE = "localstripe 1.15.10 models an old API version (account_balance, no defaults)"


# -- scenarios ------------------------------------------------------------------------------


def create_all_writable_params(api: Api, c: Checks) -> None:
    """Every param of ``schema.CREATE_PARAMS`` accepted and reflected.

    "Returns the Customer object after successful customer creation." (reference, Create)
    """
    c.check(
        "sample covers every CREATE_PARAMS key",
        lambda: set(CREATE_SAMPLE) == set(schema.CREATE_PARAMS) == set(CREATE_EXPECTED),
    )
    expand = [("expand[]", name) for name in ("cash_balance", "sources", "tax", "tax_ids")]
    response = api.post("/v1/customers", [*form_pairs(CREATE_SAMPLE), *expand])
    c.check("create answers 200", lambda: response.status_code == 200, detail=lambda: response.text)
    customer = response.json()
    for name, reads_back in CREATE_EXPECTED.items():
        c.check(f"{name} reads back", lambda f=reads_back: f(customer), detail=lambda: customer)


def create_and_retrieve(api: Api, c: Checks) -> None:
    """Create then retrieve; ids, defaults and the example object of the reference.

    The Customer object example: ``"balance": 0``, ``"invoice_settings": {custom_fields,
    default_payment_method, footer, rendering_options}``, ``"preferred_locales": []``,
    ``"tax_exempt": "none"``, ``"next_invoice_sequence": 1``, ``"livemode": false``.
    """
    params = {
        "name": "Jenny Rosen",
        "email": "jennyrosen@example.com",
        "description": "fidelity",
        "phone": "+33123456789",
        "address": {"city": "Paris", "line1": "1 rue de Rivoli"},
        "metadata": {"order_id": "6735"},
    }
    response = api.post("/v1/customers", params)
    c.check("create answers 200", lambda: response.status_code == 200, detail=lambda: response.text)
    created = response.json()
    c.check("object is customer", lambda: created["object"] == "customer")
    c.check("id is cus_ + 14 alphanumerics", lambda: ID_SHAPE.fullmatch(created["id"]))
    c.check("livemode false", lambda: created["livemode"] is False)
    c.check("created is a unix timestamp", lambda: isinstance(created["created"], int))
    for name in ("name", "email", "description", "phone", "metadata"):
        c.check(f"{name} echoed", lambda n=name: created[n] == params[n])
    c.check(
        "address has its six keys, unset ones null",
        lambda: (
            created["address"]
            == {
                "city": "Paris",
                "country": None,
                "line1": "1 rue de Rivoli",
                "line2": None,
                "postal_code": None,
                "state": None,
            }
        ),
        deviates={LOCALSTRIPE: "localstripe echoes only the address keys that were sent"},
    )
    c.check(
        "every default attribute present",
        lambda: set(DEFAULT_ATTRIBUTES) <= set(created),
        deviates={LOCALSTRIPE: LOCALSTRIPE_SHAPE},
        detail=lambda: sorted(set(DEFAULT_ATTRIBUTES) - set(created)),
    )
    defaults = {
        "balance": 0,
        "next_invoice_sequence": 1,
        "preferred_locales": [],
        "tax_exempt": "none",
        "delinquent": False,
        "discount": None,
        "shipping": None,
    }
    c.check(
        "Stripe's defaults for the rest",
        lambda: all(created[k] == v for k, v in defaults.items()),
        deviates={LOCALSTRIPE: LOCALSTRIPE_SHAPE},
    )
    c.check(
        "invoice_settings has its four keys",
        lambda: (
            created["invoice_settings"]
            == {
                "custom_fields": None,
                "default_payment_method": None,
                "footer": None,
                "rendering_options": None,
            }
        ),
        deviates={LOCALSTRIPE: "localstripe has only invoice_settings.default_payment_method"},
    )
    c.check(
        "invoice_prefix generated (8 uppercase hex)",
        lambda: re.fullmatch(r"[0-9A-F]{8}", created["invoice_prefix"]),
        deviates={LOCALSTRIPE: LOCALSTRIPE_SHAPE},
    )
    retrieved = api.get(f"/v1/customers/{created['id']}")
    c.check("retrieve answers 200", lambda: retrieved.status_code == 200)
    c.check("retrieve equals create", lambda: retrieved.json() == created)


def partial_update(api: Api, c: Checks) -> None:
    """ "Any parameters not provided will be left unchanged." (reference, Update a customer)"""
    customer = api.create_customer(
        {"name": "Jenny", "email": "j@example.com", "metadata": {"a": "1"}}
    )
    response = api.post(f"/v1/customers/{customer['id']}", {"description": "updated"})
    c.check("update answers 200", lambda: response.status_code == 200)
    updated = response.json()
    c.check("passed param changed", lambda: updated["description"] == "updated")
    c.check(
        "other params unchanged",
        lambda: (
            (updated["name"], updated["email"], updated["metadata"])
            == ("Jenny", "j@example.com", {"a": "1"})
        ),
    )
    c.check(
        "metadata keys merge",
        lambda: (
            api.post(f"/v1/customers/{customer['id']}", {"metadata": {"b": "2"}}).json()["metadata"]
            == {"a": "1", "b": "2"}
        ),
    )


def metadata_unset(api: Api, c: Checks) -> None:
    """ "Individual keys can be unset by posting an empty value to them. All keys can be unset
    by posting an empty value to metadata." (reference, Create/Update, metadata)"""
    customer = api.create_customer({"metadata": {"a": "1", "b": "2"}})
    path = f"/v1/customers/{customer['id']}"
    one = api.post(path, {"metadata": {"a": ""}})
    c.check(
        "metadata[a]= unsets a",
        lambda: one.json()["metadata"] == {"b": "2"},
        deviates={LOCALSTRIPE: 'localstripe stores "" as the value'},
    )
    everything = api.post(path, {"metadata": ""})
    c.check(
        "metadata= unsets all",
        lambda: everything.json()["metadata"] == {},
        deviates={LOCALSTRIPE: "localstripe ignores metadata="},
    )


def clear_field(api: Api, c: Checks) -> None:
    """``""`` clears a nullable field (shared/stripe/README.md: ``accepts_empty`` - ``""`` is
    allowed and unsets the value; schema.UPDATE_PARAMS['address'].accepts_empty)."""
    customer = api.create_customer(
        {"description": "to clear", "phone": "+331", "address": {"city": "Paris"}}
    )
    path = f"/v1/customers/{customer['id']}"
    cleared = api.post(path, {"description": "", "phone": "", "address": ""})
    c.check("update answers 200", lambda: cleared.status_code == 200)
    c.check(
        'description="" -> null',
        lambda: cleared.json()["description"] is None,
        deviates={LOCALSTRIPE: 'localstripe stores ""'},
    )
    c.check(
        'address="" -> null',
        lambda: cleared.json()["address"] is None,
        deviates={LOCALSTRIPE: 'localstripe stores ""'},
    )


def list_pagination(api: Api, c: Checks) -> None:
    """Lists: ``{"object": "list", "data", "has_more", "url": "/v1/customers"}``, newest
    first, cursor with ``starting_after`` / ``ending_before`` (shared/stripe/README.md)."""
    ids = [api.create_customer({"email": f"page{i}@example.com"})["id"] for i in range(5)]
    pages: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": 2}
    for _ in range(5):
        body = api.get("/v1/customers", params).json()
        pages.append(body)
        if not body["has_more"]:
            break
        params = {"limit": 2, "starting_after": body["data"][-1]["id"]}
    seen = [customer["id"] for page in pages for customer in page["data"]]
    c.check("list object shape", lambda: pages[0]["object"] == "list")
    c.check("url is /v1/customers", lambda: pages[0]["url"] == "/v1/customers")
    c.check("every customer exactly once", lambda: sorted(seen) == sorted(ids), detail=lambda: seen)
    c.check("pages of 2, 2, 1", lambda: [len(p["data"]) for p in pages] == [2, 2, 1])
    c.check(
        "has_more true, true, false", lambda: [p["has_more"] for p in pages] == [True, True, False]
    )
    c.check(
        "newest first",
        lambda: seen == ids[::-1],
        deviates={LOCALSTRIPE: "localstripe lists oldest first"},
    )
    before = api.get("/v1/customers", {"limit": 2, "ending_before": ids[0]})
    c.check(
        "ending_before gives the page just newer",
        lambda: (
            [x["id"] for x in before.json()["data"]] == [ids[2], ids[1]]
            and before.json()["has_more"] is True
        ),
        deviates={LOCALSTRIPE: "localstripe rejects ending_before (400 Unexpected)"},
    )


def list_filters(api: Api, c: Checks) -> None:
    """``email`` and ``created[gt|gte|lt|lte]`` filters (schema.LIST_PARAMS); limit 1-100
    (shared/stripe/README.md)."""
    first = api.create_customer({"email": "filter@example.com"})
    api.create_customer({"email": "other@example.com"})
    by_email = api.get("/v1/customers", {"email": "filter@example.com"}).json()["data"]
    c.check("email filter", lambda: [x["id"] for x in by_email] == [first["id"]])
    created = first["created"]
    after = api.get("/v1/customers", {"created": {"gt": created + 10}})
    c.check(
        "created[gt] filter",
        lambda: after.status_code == 200 and after.json()["data"] == [],
        deviates={LOCALSTRIPE: "localstripe rejects created on customers (400 Unexpected)"},
    )
    upto = api.get("/v1/customers", {"created": {"lte": created + 10, "gte": created}})
    c.check(
        "created[gte]+[lte] filter",
        lambda: len(upto.json()["data"]) == 2,
        deviates={LOCALSTRIPE: "localstripe rejects created on customers (400 Unexpected)"},
    )
    c.check("limit=0 refused", lambda: api.get("/v1/customers", {"limit": 0}).status_code == 400)
    c.check(
        "limit=101 refused",
        lambda: api.get("/v1/customers", {"limit": 101}).status_code == 400,
        deviates={LOCALSTRIPE: "localstripe accepts any positive limit"},
    )


def delete_then_retrieve(api: Api, c: Checks) -> None:
    """ "If it's for a deleted Customer, a subset of the customer's information is returned,
    including a deleted property that's set to true." (reference, Retrieve a customer)"""
    customer = api.create_customer({"email": "gone@example.com"})
    path = f"/v1/customers/{customer['id']}"
    deleted = api.delete(path)
    stub = {"id": customer["id"], "object": "customer", "deleted": True}
    c.check("DELETE answers the deleted stub", lambda: deleted.json() == stub)
    retrieved = api.get(path)
    c.check(
        "GET after delete answers deleted: true",
        lambda: retrieved.status_code == 200 and retrieved.json() == stub,
        deviates={LOCALSTRIPE: "localstripe 404s a deleted customer"},
    )
    c.check("update after delete is 404", lambda: api.post(path, {"name": "x"}).status_code == 404)
    c.check("DELETE again is 404", lambda: api.delete(path).status_code == 404)
    listed = api.get("/v1/customers").json()["data"]
    c.check("not listed", lambda: customer["id"] not in [x["id"] for x in listed])


def error_shapes(api: Api, c: Checks) -> None:
    """Stripe's error object ``{"error": {"type", "code", "message", "param", ...}}``
    (shared/stripe/README.md); ``schema.CREATE_PARAMS['email'].maxLength = 512``."""
    unknown = api.post("/v1/customers", {"foo": "bar"})
    c.check("unknown param -> 400", lambda: unknown.status_code == 400)
    c.check(
        "error.type invalid_request_error",
        lambda: _error(unknown)["type"] == "invalid_request_error",
    )
    c.check("error.message is a string", lambda: isinstance(_error(unknown)["message"], str))
    c.check(
        "code parameter_unknown, param foo",
        lambda: (_error(unknown)["code"], _error(unknown)["param"]) == ("parameter_unknown", "foo"),
        deviates={LOCALSTRIPE: "localstripe sends no code/param"},
    )
    c.check(
        "message 'Received unknown parameter: foo'",
        lambda: _error(unknown)["message"] == "Received unknown parameter: foo",
        deviates={LOCALSTRIPE: "localstripe says 'Unexpected foo'"},
    )
    too_long = api.post("/v1/customers", {"email": "x" * 503 + "@example.com"})
    c.check(
        "email over 512 chars -> 400 param email",
        lambda: too_long.status_code == 400 and _error(too_long)["param"] == "email",
        deviates={LOCALSTRIPE: "localstripe enforces no maxLength"},
    )
    missing = api.get("/v1/customers/cus_doesnotexist00")
    c.check("unknown customer -> 404", lambda: missing.status_code == 404)
    c.check(
        "404 code resource_missing, param id",
        lambda: (_error(missing)["code"], _error(missing)["param"]) == ("resource_missing", "id"),
        deviates={LOCALSTRIPE: "localstripe sends 'Not Found' without code"},
    )
    anonymous = Api(api.base_url, api_key=None)
    c.check("no API key -> 401", lambda: anonymous.get("/v1/customers").status_code == 401)
    c.check("unknown URL -> 404", lambda: api.get("/v1/nothing_here").status_code == 404)
    c.check(
        "Request-Id header",
        lambda: missing.headers["Request-Id"].startswith("req_"),
        deviates={LOCALSTRIPE: "localstripe sends no Request-Id"},
    )


def events(api: Api, c: Checks) -> None:
    """``customer.created``/``updated``/``deleted`` events with ``data.previous_attributes``
    on updates (shared/stripe/README.md, Webhooks)."""
    customer = api.create_customer({"name": "Before"})
    path = f"/v1/customers/{customer['id']}"
    api.post(path, {"name": "After"})
    api.delete(path)
    listed = api.get("/v1/events").json()["data"]
    c.check(
        "types, newest first",
        lambda: (
            [e["type"] for e in listed][:3]
            == ["customer.deleted", "customer.updated", "customer.created"]
        ),
        deviates={LOCALSTRIPE: "localstripe lists events oldest first"},
    )
    types = {e["type"] for e in listed}
    c.check(
        "all three types present",
        lambda: {"customer.created", "customer.updated", "customer.deleted"} <= types,
    )
    updated = next(e for e in listed if e["type"] == "customer.updated")
    c.check(
        "event shape", lambda: updated["object"] == "event" and updated["id"].startswith("evt_")
    )
    c.check(
        "data.object is the customer", lambda: updated["data"]["object"]["id"] == customer["id"]
    )
    c.check(
        "previous_attributes on update",
        lambda: updated["data"]["previous_attributes"] == {"name": "Before"},
        deviates={LOCALSTRIPE: "localstripe sends no previous_attributes"},
    )
    c.check(
        "api_version is the spec's",
        lambda: updated["api_version"] == schema.API_VERSION,
        deviates={LOCALSTRIPE: "localstripe says 2017-08-15"},
    )
    only = api.get("/v1/events", {"type": "customer.created"}).json()["data"]
    c.check("type filter", lambda: [e["type"] for e in only] == ["customer.created"])


def idempotency(api: Api, c: Checks) -> None:
    """ "the same key with the same parameters returns the first result, the same key with
    different parameters is an idempotency_error" (shared/stripe/README.md, Headers)."""
    headers = {"Idempotency-Key": "fidelity-key-1"}
    first = api.post("/v1/customers", {"email": "idem@example.com"}, headers=headers)
    again = api.post("/v1/customers", {"email": "idem@example.com"}, headers=headers)
    c.check(
        "same key, same params replays",
        lambda: again.json()["id"] == first.json()["id"],
        deviates={LOCALSTRIPE: "localstripe ignores Idempotency-Key (creates twice)"},
    )
    c.check(
        "Idempotent-Replayed: true",
        lambda: again.headers["Idempotent-Replayed"] == "true",
        deviates={LOCALSTRIPE: "localstripe ignores Idempotency-Key"},
    )
    other = api.post("/v1/customers", {"email": "other@example.com"}, headers=headers)
    c.check(
        "same key, other params -> 400 idempotency_error",
        lambda: other.status_code == 400 and _error(other)["type"] == "idempotency_error",
        deviates={LOCALSTRIPE: "localstripe ignores Idempotency-Key"},
    )


def account(api: Api, c: Checks) -> None:
    """``GET /v1/account``: a fixed test-mode platform account (issue 4)."""
    body = api.get("/v1/account").json()
    c.check(
        "object account, acct_ id",
        lambda: body["object"] == "account" and body["id"].startswith("acct_"),
    )


SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        "create_all_writable_params",
        create_all_writable_params,
        servers=(EMULATOR,),
        not_on={LOCALSTRIPE: "rejects shipping, tax, cash_balance, invoice_prefix ... (400)"},
    ),
    Scenario("create_and_retrieve", create_and_retrieve),
    Scenario("partial_update", partial_update),
    Scenario("metadata_unset", metadata_unset),
    Scenario("clear_field", clear_field),
    Scenario("list_pagination", list_pagination),
    Scenario("list_filters", list_filters),
    Scenario("delete_then_retrieve", delete_then_retrieve),
    Scenario("error_shapes", error_shapes),
    Scenario("events", events),
    Scenario("idempotency", idempotency),
    Scenario(
        "account",
        account,
        servers=(EMULATOR,),
        not_on={LOCALSTRIPE: "no /v1/account endpoint (404)"},
    ),
)

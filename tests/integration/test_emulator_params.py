"""Parameter validation, driven from the spec data: every param, nested key, type, maxLength,
enum, ``required`` and ``accepts_empty`` of ``schema.CREATE_PARAMS`` / ``UPDATE_PARAMS`` /
``LIST_PARAMS`` gets a request that should pass and one that should not.

The cases are generated from ``django_stripe_customers.schema`` (built from
``shared/stripe/customer.json``), so each test's source is the spec entry named in its id.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from django_stripe_customers import schema
from django_stripe_customers.testing import StripeEmulator
from django_stripe_customers.testing.endpoints import REFERENCES
from django_stripe_customers.testing.objects import SPECIAL_PARAMS
from tests.support.fidelity.client import Api

Spec = dict[str, Any]
Path = tuple[str, ...]

ENDPOINTS: dict[str, dict[str, Spec]] = {
    "create": schema.CREATE_PARAMS,
    "update": schema.UPDATE_PARAMS,
    "list": schema.LIST_PARAMS,
}


def call(emulator_api: Api, endpoint: str, params: Any) -> Any:
    if endpoint == "create":
        return emulator_api.post("/v1/customers", params)
    if endpoint == "update":
        customer = emulator_api.create_customer()
        return emulator_api.post(f"/v1/customers/{customer['id']}", params)
    return emulator_api.get("/v1/customers", params)


def bracketed(path: Path) -> str:
    return path[0] + "".join(f"[{part}]" for part in path[1:])


def minimal(spec: Spec) -> Any:
    """A valid, non-empty value for ``spec`` (required nested fields, else the first one)."""
    if spec["type"] == "object":
        fields = spec["fields"]
        chosen = [name for name, field in fields.items() if field.get("required")] or [
            next(iter(fields))
        ]
        value: Any = {name: minimal(fields[name]) for name in chosen}
    elif spec["type"] == "string":
        value = spec["enum"][0] if spec.get("enum") else "x"
    elif spec["type"] == "integer":
        value = "1"
    elif spec["type"] == "boolean":
        value = "true"
    else:
        value = {"k": "v"}
    return [value] if spec.get("list") else value


def item_spec(spec: Spec) -> Spec:
    return {**spec, "list": False}


def build(specs: dict[str, Spec], path: Path, value: Any) -> dict[str, Any]:
    """Params setting ``path`` to ``value``, with the required siblings on the way filled."""
    name, rest = path[0], path[1:]
    spec = specs[name]
    if spec.get("list") and rest:
        assert rest[0] == "0"
        rest = rest[1:]
        if not rest:
            return {name: [value]}
        return {name: [{**minimal(item_spec(spec)), **build(spec["fields"], rest, value)}]}
    if not rest:
        return {name: value}
    return {name: {**minimal(spec), **build(spec["fields"], rest, value)}}


def spec_at(specs: dict[str, Spec], path: Path) -> Spec:
    spec: Spec = {"fields": specs}
    for part in path:
        spec = item_spec(spec) if part == "0" else spec["fields"][part]
    return spec


def leaves(specs: dict[str, Spec], path: Path = ()) -> Iterator[tuple[Path, Spec]]:
    for name, spec in specs.items():
        here = (*path, name, "0") if spec.get("list") else (*path, name)
        if spec["type"] == "object":
            yield from leaves(spec["fields"], here)
        elif not spec["type"].startswith("map"):
            yield here, spec


def objects(specs: dict[str, Spec], path: Path = ()) -> Iterator[tuple[Path, Spec]]:
    """Every object param (path to it, its spec), at any depth."""
    for name, spec in specs.items():
        if spec["type"] == "object":
            here = (*path, name, "0") if spec.get("list") else (*path, name)
            yield here, spec
            yield from objects(spec["fields"], here)


def cases(select: Any) -> list[Any]:
    return [
        pytest.param(endpoint, path, spec, id=f"{endpoint}:{bracketed(path)}")
        for endpoint, specs in ENDPOINTS.items()
        for path, spec in leaves(specs)
        if select(endpoint, path, spec)
    ]


def error_of(response: Any) -> dict[str, Any]:
    assert response.status_code == 400, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    return error


# -- maxLength ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("endpoint", "path", "spec"), cases(lambda e, p, s: "maxLength" in s))
def test_max_length(emulator_api: Api, endpoint: str, path: Path, spec: Spec) -> None:
    """schema.*_PARAMS[...].maxLength: one character more is
    ``parameter_invalid_string_too_long`` on the bracketed param."""
    limit = spec["maxLength"]
    error = error_of(
        call(emulator_api, endpoint, build(ENDPOINTS[endpoint], path, "x" * (limit + 1)))
    )
    assert error["code"] == "parameter_invalid_string_too_long"
    assert error["param"] == bracketed(path)
    assert error["message"].endswith(f"must be at most {limit} characters")
    if endpoint != "list" and not spec.get("enum") and path[0] != "expand":
        # an id the emulator takes as existing has the prefix Stripe gives it (pm_, tok_, ...)
        prefix = REFERENCES[path[0]][1][0] if path[0] in REFERENCES and len(path) == 1 else ""
        value = prefix + "x" * (limit - len(prefix))
        at_limit = call(emulator_api, endpoint, build(ENDPOINTS[endpoint], path, value))
        assert at_limit.status_code == 200, at_limit.text


# -- enums -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("endpoint", "path", "spec"), cases(lambda e, p, s: s.get("enum")))
def test_enum(emulator_api: Api, endpoint: str, path: Path, spec: Spec) -> None:
    """schema.*_PARAMS[...].enum: each value accepted; anything else refused with
    "Invalid tax_exempt: must be one of exempt, none, or reverse"-style messages."""
    error = error_of(call(emulator_api, endpoint, build(ENDPOINTS[endpoint], path, "bogus")))
    values = spec["enum"]
    listed = (
        " or ".join(values) if len(values) <= 2 else ", ".join(values[:-1]) + ", or " + values[-1]
    )
    assert error["param"] == bracketed(path)
    assert error["message"] == f"Invalid {bracketed(path)}: must be one of {listed}"
    for value in values:
        accepted = call(emulator_api, endpoint, build(ENDPOINTS[endpoint], path, value))
        assert accepted.status_code == 200, (value, accepted.text)


def test_tax_exempt_message_is_stripes() -> None:
    """The message format of the issue: "Invalid tax_exempt: must be one of exempt, none, or
    reverse" (schema.CREATE_PARAMS['tax_exempt'].enum)."""
    assert schema.CREATE_PARAMS["tax_exempt"]["enum"] == ["exempt", "none", "reverse"]
    with StripeEmulator() as emulator:
        error = Api(emulator.url).post("/v1/customers", {"tax_exempt": "all"}).json()["error"]
    assert error["message"] == "Invalid tax_exempt: must be one of exempt, none, or reverse"


# -- integers and booleans ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("endpoint", "path", "spec"), cases(lambda e, p, s: s["type"] == "integer")
)
def test_integer(emulator_api: Api, endpoint: str, path: Path, spec: Spec) -> None:
    """schema.*_PARAMS[...].type integer: must parse (``parameter_invalid_integer``)."""
    for bad in ("abc", "1.5", "1e3", "99999999999999999999999"):
        error = error_of(call(emulator_api, endpoint, build(ENDPOINTS[endpoint], path, bad)))
        assert (error["code"], error["param"]) == ("parameter_invalid_integer", bracketed(path))
        assert error["message"] == f"Invalid integer: {bad}"
    assert call(emulator_api, endpoint, build(ENDPOINTS[endpoint], path, "7")).status_code == 200


@pytest.mark.parametrize(
    ("endpoint", "path", "spec"), cases(lambda e, p, s: s["type"] == "boolean")
)
def test_boolean(emulator_api: Api, endpoint: str, path: Path, spec: Spec) -> None:
    """schema.*_PARAMS[...].type boolean: "true" or "false"."""
    error = error_of(call(emulator_api, endpoint, build(ENDPOINTS[endpoint], path, "maybe")))
    assert (error["param"], error["message"]) == (bracketed(path), "Invalid boolean: maybe")
    for value in ("true", "false"):
        assert (
            call(emulator_api, endpoint, build(ENDPOINTS[endpoint], path, value)).status_code == 200
        )


def test_integer_values_are_stored_as_numbers(emulator_api: Api) -> None:
    """schema.CREATE_PARAMS balance / next_invoice_sequence: integers (and negative ones)."""
    customer = emulator_api.create_customer({"balance": "-250", "next_invoice_sequence": "+3"})
    assert (customer["balance"], customer["next_invoice_sequence"]) == (-250, 3)


# -- structure: required, unknown, empty -------------------------------------------------------


REQUIRED = [
    pytest.param(endpoint, path, name, id=f"{endpoint}:{bracketed((*path, name))}")
    for endpoint, specs in ENDPOINTS.items()
    for path, spec in objects(specs)
    for name, field in spec["fields"].items()
    if field.get("required")
]


@pytest.mark.parametrize(("endpoint", "path", "missing"), REQUIRED)
def test_required_nested_field(emulator_api: Api, endpoint: str, path: Path, missing: str) -> None:
    """schema.*_PARAMS[...].fields[...].required: absent -> ``parameter_missing``."""
    specs = ENDPOINTS[endpoint]
    fields = spec_at(specs, path)["fields"]
    value = {name: minimal(field) for name, field in fields.items() if name != missing}
    error = error_of(call(emulator_api, endpoint, build(specs, path, value)))
    assert (error["code"], error["param"]) == ("parameter_missing", bracketed((*path, missing)))
    assert error["message"] == f"Missing required param: {bracketed((*path, missing))}."


UNKNOWN = [
    pytest.param(endpoint, path, id=f"{endpoint}:{bracketed(path) if path else '<top>'}")
    for endpoint, specs in ENDPOINTS.items()
    for path in [(), *(p for p, _ in objects(specs))]
]


@pytest.mark.parametrize(("endpoint", "path"), UNKNOWN)
def test_unknown_key_at_every_level(emulator_api: Api, endpoint: str, path: Path) -> None:
    """Keys not in schema.*_PARAMS (or their ``fields``): ``parameter_unknown``, with Stripe's
    "Received unknown parameter: shipping[foo]" message and bracketed ``param``."""
    specs = ENDPOINTS[endpoint]
    if path:
        params = build(specs, path, {**minimal(item_spec(spec_at(specs, path))), "bogus": "1"})
    else:
        params = {"bogus": "1"}
    error = error_of(call(emulator_api, endpoint, params))
    param = bracketed((*path, "bogus")) if path else "bogus"
    assert (error["code"], error["param"]) == ("parameter_unknown", param)
    assert error["message"] == f"Received unknown parameter: {param}"


def empty_expectation(spec: Spec) -> bool:
    """Whether ``""`` is accepted: ``accepts_empty``, or a plain optional string."""
    plain_string = spec["type"] == "string" and not spec.get("list") and not spec.get("enum")
    return bool(spec.get("accepts_empty") or (plain_string and not spec.get("required")))


EMPTY = [
    pytest.param(endpoint, name, spec, id=f"{endpoint}:{name}")
    for endpoint in ("create", "update")
    for name, spec in ENDPOINTS[endpoint].items()
]


@pytest.mark.parametrize(("endpoint", "name", "spec"), EMPTY)
def test_empty_string(emulator_api: Api, endpoint: str, name: str, spec: Spec) -> None:
    """README: ``accepts_empty`` - ``""`` is allowed and unsets the value; elsewhere Stripe's
    ``parameter_invalid_empty`` ("You passed an empty string for ...")."""
    response = call(emulator_api, endpoint, {name: ""})
    if empty_expectation(spec):
        assert response.status_code == 200, response.text
    else:
        error = error_of(response)
        assert (error["code"], error["param"]) == ("parameter_invalid_empty", name)
        assert error["message"].startswith(f"You passed an empty string for '{name}'.")


# -- metadata ------------------------------------------------------------------------------------


def test_metadata_limits(emulator_api: Api) -> None:
    """schema.METADATA_LIMITS: 50 keys, keys <= 40 chars without [ or ], values <= 500."""
    limits = schema.METADATA_LIMITS
    key_max, value_max = limits["key_max_length"], limits["value_max_length"]
    ok = {"k" * key_max: "v" * value_max, **{f"k{i}": "v" for i in range(limits["max_keys"] - 1)}}
    assert emulator_api.post("/v1/customers", {"metadata": ok}).status_code == 200
    long_key = "k" * (key_max + 1)
    error = error_of(emulator_api.post("/v1/customers", {"metadata": {long_key: "v"}}))
    assert (error["param"], error["code"]) == (
        f"metadata[{long_key}]",
        "parameter_invalid_string_too_long",
    )
    error = error_of(emulator_api.post("/v1/customers", {"metadata": {"k": "v" * (value_max + 1)}}))
    assert (error["param"], error["code"]) == ("metadata[k]", "parameter_invalid_string_too_long")
    error = error_of(
        emulator_api.post("/v1/customers", {"metadata": {f"k{i}": "v" for i in range(51)}})
    )
    assert error["param"] == "metadata"
    for key in ("a[b", "a]b", "a[b]"):
        response = emulator_api.post("/v1/customers", [(f"metadata[{key}]", "v")])
        assert error_of(response)["param"] == f"metadata[{key}]"
    nested = error_of(emulator_api.post("/v1/customers", [("metadata[a][b]", "v")]))
    assert nested["param"] == "metadata[a]"
    assert (
        error_of(emulator_api.post("/v1/customers", {"metadata": "x"}))["message"]
        == "Invalid object"
    )


# -- the wire encoding ---------------------------------------------------------------------------


def test_arrays_by_index_or_brackets(emulator_api: Api) -> None:
    """README: "arrays use indexes (``preferred_locales[0]=fr``)"; ``[]`` appends too."""
    by_index = emulator_api.post(
        "/v1/customers", [("preferred_locales[1]", "en"), ("preferred_locales[0]", "fr")]
    )
    assert by_index.json()["preferred_locales"] == ["fr", "en"]
    appended = emulator_api.post(
        "/v1/customers", [("preferred_locales[]", "de"), ("preferred_locales[]", "it")]
    )
    assert appended.json()["preferred_locales"] == ["de", "it"]
    custom = emulator_api.post(
        "/v1/customers",
        [
            ("invoice_settings[custom_fields][][name]", "a"),
            ("invoice_settings[custom_fields][][value]", "1"),
            ("invoice_settings[custom_fields][][name]", "b"),
            ("invoice_settings[custom_fields][][value]", "2"),
        ],
    )
    assert custom.json()["invoice_settings"]["custom_fields"] == [
        {"name": "a", "value": "1"},
        {"name": "b", "value": "2"},
    ]


@pytest.mark.parametrize(
    ("pairs", "param", "message"),
    [
        ([("address", "Paris")], "address", "Invalid object"),
        ([("email[a]", "b")], "email", "Invalid string: {'a': 'b'}"),
        ([("preferred_locales", "fr")], "preferred_locales", "Invalid array"),
        ([("preferred_locales[x]", "fr")], "preferred_locales", "Invalid array"),
        ([("tax_id_data[0]", "x")], "tax_id_data[0]", "Invalid object"),
    ],
)
def test_shape_mismatches(
    emulator_api: Api, pairs: list[tuple[str, str]], param: str, message: str
) -> None:
    """schema.CREATE_PARAMS types: objects need keys, strings are scalars, lists are lists."""
    error = error_of(emulator_api.post("/v1/customers", pairs))
    assert (error["param"], error["message"]) == (param, message)


def test_a_value_and_nested_keys_conflict(emulator_api: Api) -> None:
    """``a=1&a[b]=2`` is not a valid form for any Stripe param."""
    assert (
        emulator_api.post("/v1/customers", [("address", "x"), ("address[city]", "P")]).status_code
        == 400
    )
    assert (
        emulator_api.post("/v1/customers", [("address[city]", "P"), ("address", "x")]).status_code
        == 400
    )


def test_coupon_and_promotion_code_are_not_params_at_this_api_version(emulator_api: Api) -> None:
    """schema.SEED_CREATE_PARAMS lists coupon and promotion_code, but schema.CREATE_PARAMS
    (API version schema.API_VERSION) no longer has them: Stripe answers parameter_unknown."""
    assert {"coupon", "promotion_code"} <= set(schema.SEED_CREATE_PARAMS)
    for name in ("coupon", "promotion_code"):
        assert name not in schema.CREATE_PARAMS
        error = error_of(emulator_api.post("/v1/customers", {name: "SAVE10"}))
        assert (error["code"], error["param"]) == ("parameter_unknown", name)


def test_retrieve_and_delete_take_no_other_params(emulator_api: Api) -> None:
    """Reference, Retrieve: "No parameters." (``expand`` aside, which every endpoint takes)."""
    customer = emulator_api.create_customer()
    path = f"/v1/customers/{customer['id']}"
    assert error_of(emulator_api.get(path, {"email": "x"}))["code"] == "parameter_unknown"
    assert error_of(emulator_api.delete(path, {"email": "x"}))["code"] == "parameter_unknown"
    assert emulator_api.get(path, {"expand[]": "tax"}).status_code == 200


def test_every_write_param_is_applied_somewhere() -> None:
    """Each schema.CREATE_PARAMS / UPDATE_PARAMS key is an attribute of the object or one of
    the write-only params the emulator maps onto the object (objects.SPECIAL_PARAMS)."""
    for name in {*schema.CREATE_PARAMS, *schema.UPDATE_PARAMS}:
        assert name in schema.OBJECT_ATTRIBUTES or name in SPECIAL_PARAMS, name


# -- ids of objects the emulator does not store ----------------------------------------------


@pytest.mark.parametrize(
    ("endpoint", "param", "kind", "known"),
    [
        ("create", "payment_method", "PaymentMethod", "pm_card_visa"),
        ("create", "source", "token", "tok_visa"),
        ("update", "source", "token", "tok_visa"),
        ("create", "test_clock", "test clock", "clock_1AbC"),
    ],
)
def test_an_id_without_its_object_s_prefix_is_resource_missing(
    emulator_api: Api, endpoint: str, param: str, kind: str, known: str
) -> None:
    """endpoints.REFERENCES: Stripe answers an unknown id ``resource_missing`` on its param;
    an id with the prefix Stripe gives such objects is taken as existing."""
    error = error_of(call(emulator_api, endpoint, {param: "visa"}))
    assert (error["code"], error["param"]) == ("resource_missing", param)
    assert error["message"] == f"No such {kind}: 'visa'"
    assert call(emulator_api, endpoint, {param: known}).status_code == 200

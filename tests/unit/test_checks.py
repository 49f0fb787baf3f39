"""System checks report configuration mistakes with stable ids."""

from __future__ import annotations

import types

import pytest
from django.core import checks
from django.urls import include, path

from django_stripe_customers import schema

VALID = {"API_KEY": "sk_test_ok", "WEBHOOK_SECRETS": ["whsec_ok"]}


def run_checks(deploy=False):
    found = checks.run_checks(tags=["stripe_customers"], include_deployment_checks=deploy)
    return {m.id: m for m in found}


def urlconf(*included: str) -> types.ModuleType:
    """A URLconf (a module, so Django can cache its resolver) including ``included``."""
    module = types.ModuleType("tests.generated_urls")
    module.urlpatterns = [path(f"{n}/", include(name)) for n, name in enumerate(included)]
    return module


@pytest.fixture(autouse=True)
def no_secrets_from_the_environment(monkeypatch):
    monkeypatch.delenv("STRIPE_API_KEY", raising=False)
    monkeypatch.delenv("STRIPE_WEBHOOK_SECRET", raising=False)


def test_valid_configuration_is_silent(settings):
    settings.DEBUG = False
    settings.STRIPE_CUSTOMERS = VALID
    assert run_checks() == {}
    assert run_checks(deploy=True) == {}


def test_missing_key_is_a_warning_and_an_error_only_under_deploy(settings):
    settings.STRIPE_CUSTOMERS = {"WEBHOOK_SECRETS": ["whsec_ok"]}
    found = run_checks()
    assert set(found) == {"stripe_customers.W005"}
    assert found["stripe_customers.W005"].level == checks.WARNING
    assert "STRIPE_API_KEY" in found["stripe_customers.W005"].hint
    deploying = run_checks(deploy=True)
    assert deploying["stripe_customers.E001"].level == checks.ERROR
    assert "STRIPE_API_KEY" in deploying["stripe_customers.E001"].hint


def test_e002_publishable_key(settings):
    settings.STRIPE_CUSTOMERS = {"API_KEY": "pk_test_123"}
    assert "stripe_customers.E002" in run_checks()


def test_e003_bad_types(settings):
    settings.STRIPE_CUSTOMERS = {
        "API_KEY": "sk_test_ok",
        "TIMEOUT": "10",
        "MAX_RETRIES": -1,
        "WEBHOOK_SECRETS": "whsec_single_string",
    }
    messages = [m for m in checks.run_checks(tags=["stripe_customers"])]
    texts = " ".join(m.msg for m in messages if m.id == "stripe_customers.E003")
    assert "TIMEOUT" in texts and "MAX_RETRIES" in texts and "WEBHOOK_SECRETS" in texts


def test_e003_settings_not_a_dict(settings):
    settings.STRIPE_CUSTOMERS = ["sk_test_ok"]
    assert "stripe_customers.E003" in run_checks()


@pytest.mark.parametrize(
    ("base", "problem"),
    [
        ("127.0.0.1:12111", "an http:// or https:// URL"),
        ("api.stripe.com", "an http:// or https:// URL"),
        ("ftp://api.stripe.com", "an http:// or https:// URL"),
        ("https://", "a URL with a host"),
        ("http://:8080", "a URL with a host"),
        ("http://127.0.0.1:port", "a URL whose port is a number"),
        ("https://api.stripe.com?x=1", "without a query"),
        (12111, "a string, not int"),
    ],
)
def test_e004_api_base_must_be_an_http_url_with_a_host(settings, base, problem):
    settings.DEBUG = False
    settings.STRIPE_CUSTOMERS = {**VALID, "API_BASE": base}
    found = run_checks()
    assert problem in found["stripe_customers.E004"].msg
    assert repr(base) in found["stripe_customers.E004"].msg
    assert "stripe_customers.W001" not in found, "one message for one mistake"


def test_e005_api_routed_without_rest_framework_installed(settings):
    settings.STRIPE_CUSTOMERS = VALID
    settings.INSTALLED_APPS = [app for app in settings.INSTALLED_APPS if app != "rest_framework"]
    found = run_checks()
    assert "'rest_framework' is not in INSTALLED_APPS" in found["stripe_customers.E005"].msg
    assert found["stripe_customers.E005"].hint == "Add 'rest_framework' to INSTALLED_APPS."
    settings.ROOT_URLCONF = urlconf("django_stripe_customers.urls")
    assert "stripe_customers.E005" not in run_checks(), "without the API, no need for DRF"


def test_e005_not_raised_when_rest_framework_is_installed(settings):
    settings.STRIPE_CUSTOMERS = VALID
    settings.ROOT_URLCONF = urlconf("django_stripe_customers.api.urls")
    assert "stripe_customers.E005" not in run_checks()


def test_webhook_routed_without_a_secret_warns_and_is_an_error_under_deploy(settings):
    settings.STRIPE_CUSTOMERS = {"API_KEY": "sk_test_ok"}
    found = run_checks()
    assert set(found) == {"stripe_customers.W006"}
    assert "refuses every event" in found["stripe_customers.W006"].msg
    assert "STRIPE_WEBHOOK_SECRET" in found["stripe_customers.W006"].hint
    assert run_checks(deploy=True)["stripe_customers.E006"].level == checks.ERROR


def test_webhook_secret_from_the_environment_satisfies_the_check(settings, monkeypatch):
    settings.STRIPE_CUSTOMERS = {"API_KEY": "sk_test_ok"}
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", "whsec_from_env")
    assert run_checks(deploy=True) == {}


def test_no_webhook_route_needs_no_secret(settings):
    settings.STRIPE_CUSTOMERS = {"API_KEY": "sk_test_ok"}
    settings.ROOT_URLCONF = urlconf("django_stripe_customers.api.urls")
    assert run_checks(deploy=True) == {}
    settings.ROOT_URLCONF = urlconf()
    assert run_checks(deploy=True) == {}


def test_a_webhook_included_deeper_is_found(settings):
    settings.STRIPE_CUSTOMERS = {"API_KEY": "sk_test_ok"}
    outer = types.ModuleType("tests.generated_outer_urls")
    outer.urlpatterns = [path("billing/", include(urlconf("django_stripe_customers.urls")))]
    settings.ROOT_URLCONF = outer
    assert "stripe_customers.W006" in run_checks()


def test_w001_plain_http_outside_debug(settings):
    settings.DEBUG = False
    settings.STRIPE_CUSTOMERS = {**VALID, "API_BASE": "http://stripe.internal"}
    assert "stripe_customers.W001" in run_checks()


def test_w001_not_raised_in_debug(settings):
    settings.DEBUG = True
    settings.STRIPE_CUSTOMERS = {"API_KEY": "sk_test_ok", "API_BASE": "http://127.0.0.1:12111"}
    assert "stripe_customers.W001" not in run_checks()


def test_w002_other_api_version(settings):
    settings.STRIPE_CUSTOMERS = {"API_KEY": "sk_test_ok", "API_VERSION": "2020-08-27"}
    found = run_checks()
    assert schema.API_VERSION in found["stripe_customers.W002"].msg


def test_w003_unknown_key_typo(settings):
    settings.STRIPE_CUSTOMERS = {"API_KEY": "sk_test_ok", "API_KYE": "x"}
    assert "API_KYE" in run_checks()["stripe_customers.W003"].msg


def test_w004_live_key_not_sent_to_stripe(settings):
    settings.DEBUG = True
    settings.STRIPE_CUSTOMERS = {"API_KEY": "sk_live_abc", "API_BASE": "http://127.0.0.1:1"}
    found = run_checks()
    assert "stripe_customers.W004" in found
    assert "sk_live_abc" not in found["stripe_customers.W004"].msg


def test_messages_never_contain_the_key(settings):
    key = "sk_test_DONOTLEAK_checks_0123456789"
    settings.DEBUG = False
    settings.STRIPE_CUSTOMERS = {"API_KEY": key, "API_BASE": "http://x", "API_VERSION": "1"}
    for message in checks.run_checks(tags=["stripe_customers"]):
        assert key not in f"{message.msg} {message.hint}"


def test_an_unknown_key_is_named_with_the_closest_known_one(settings):
    settings.STRIPE_CUSTOMERS = {**VALID, "PUSH_MOD": "inline", "ZZZ": 1}
    message = run_checks()["stripe_customers.W003"].msg
    assert "PUSH_MOD, ZZZ" in message
    assert "Did you mean 'PUSH_MOD' -> 'PUSH_MODE'?" in message


def test_deploy_reports_a_missing_secret_once_as_an_error(settings):
    """Reported (issue 19): check --deploy said E006 and W006 for one missing secret."""
    settings.STRIPE_CUSTOMERS = {}
    deploying = run_checks(deploy=True)
    assert {"stripe_customers.E001", "stripe_customers.E006"} <= set(deploying)
    assert "stripe_customers.W005" not in deploying
    assert "stripe_customers.W006" not in deploying
    assert {"stripe_customers.W005", "stripe_customers.W006"} <= set(run_checks())


def test_e009_a_wrong_accounts_setting_is_named(settings):
    settings.STRIPE_CUSTOMERS = {**VALID, "ACCOUNTS": [{"API_KEY": "sk_test_a", "CONECTED": []}]}
    found = run_checks()
    assert set(found) == {"stripe_customers.E009"}
    assert "ACCOUNTS'][0]: unknown key(s) CONECTED" in found["stripe_customers.E009"].msg


def test_accounts_with_their_keys_and_secrets_need_no_api_key(settings):
    settings.DEBUG = False
    settings.STRIPE_CUSTOMERS = {
        "ACCOUNTS": [
            {"API_KEY": "sk_test_a", "CONNECTED": "all", "CONNECT_WEBHOOK_SECRETS": ["whsec_c"]},
            {"API_KEY": "sk_test_b", "ACCOUNT": "acct_b", "WEBHOOK_SECRETS": ["whsec_b"]},
        ]
    }
    assert run_checks() == {}
    assert run_checks(deploy=True) == {}


@pytest.mark.parametrize(
    "value", [[], {"/v1/customers": 10}, {"GET /v1/customers": -1}, {"GET /v1/customers": "9"}]
)
def test_e003_endpoint_rate_limits_must_name_endpoints_and_rates(settings, value):
    settings.STRIPE_CUSTOMERS = {**VALID, "ENDPOINT_RATE_LIMITS": value}
    found = run_checks()
    assert "ENDPOINT_RATE_LIMITS" in found["stripe_customers.E003"].msg


def test_endpoint_rate_limits_of_endpoints_and_rates_pass(settings):
    settings.STRIPE_CUSTOMERS = {
        **VALID,
        "ENDPOINT_RATE_LIMITS": {"GET /v1/customers": 40, "GET /v1/events": 0},
    }
    assert run_checks() == {}

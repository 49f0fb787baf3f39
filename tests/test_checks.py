"""System checks report configuration mistakes with stable ids."""

from __future__ import annotations

from django.core import checks

from django_stripe_customers import schema


def run_checks():
    return {m.id: m for m in checks.run_checks(tags=["stripe_customers"])}


def test_valid_configuration_is_silent(settings):
    settings.DEBUG = False
    settings.STRIPE_CUSTOMERS = {"API_KEY": "sk_test_ok"}
    assert run_checks() == {}


def test_e001_missing_key(settings, monkeypatch):
    settings.STRIPE_CUSTOMERS = {}
    monkeypatch.delenv("STRIPE_API_KEY", raising=False)
    found = run_checks()
    assert "stripe_customers.E001" in found
    assert "STRIPE_API_KEY" in found["stripe_customers.E001"].hint


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


def test_w001_plain_http_outside_debug(settings):
    settings.DEBUG = False
    settings.STRIPE_CUSTOMERS = {"API_KEY": "sk_test_ok", "API_BASE": "http://stripe.internal"}
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

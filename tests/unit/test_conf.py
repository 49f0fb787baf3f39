"""Settings are read lazily from STRIPE_CUSTOMERS, then the environment, then defaults."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from django_stripe_customers import conf, schema


def test_defaults_apply_when_not_configured(settings):
    settings.STRIPE_CUSTOMERS = {"API_KEY": "sk_test_x"}
    assert conf.get_setting("API_BASE") == "https://api.stripe.com"
    assert conf.get_setting("API_VERSION") == schema.API_VERSION
    assert conf.get_setting("MAX_RETRIES") == 2
    assert conf.get_setting("PUSH_ON_SAVE") is True


def test_override_settings_takes_effect_immediately():
    with override_settings(STRIPE_CUSTOMERS={"API_KEY": "sk_test_a", "TIMEOUT": 3}):
        assert conf.get_setting("TIMEOUT") == 3
        with override_settings(STRIPE_CUSTOMERS={"API_KEY": "sk_test_a", "TIMEOUT": 7}):
            assert conf.get_setting("TIMEOUT") == 7
        assert conf.get_setting("TIMEOUT") == 3


def test_api_key_falls_back_to_environment(settings, monkeypatch):
    settings.STRIPE_CUSTOMERS = {}
    monkeypatch.setenv("STRIPE_API_KEY", "sk_test_from_env")
    assert conf.get_setting("API_KEY") == "sk_test_from_env"


def test_settings_dict_wins_over_environment(settings, monkeypatch):
    settings.STRIPE_CUSTOMERS = {"API_KEY": "sk_test_from_settings"}
    monkeypatch.setenv("STRIPE_API_KEY", "sk_test_from_env")
    assert conf.get_setting("API_KEY") == "sk_test_from_settings"


def test_missing_api_key_says_where_to_put_it(settings, monkeypatch):
    settings.STRIPE_CUSTOMERS = {}
    monkeypatch.delenv("STRIPE_API_KEY", raising=False)
    expected = r"STRIPE_CUSTOMERS\['API_KEY'\].*STRIPE_API_KEY"
    with pytest.raises(ImproperlyConfigured, match=expected):
        conf.get_setting("API_KEY")
    assert conf.has_api_key() is False


def test_absent_settings_dict_means_all_defaults(settings, monkeypatch):
    del settings.STRIPE_CUSTOMERS
    monkeypatch.setenv("STRIPE_API_KEY", "sk_test_env_only")
    assert conf.get_setting("API_KEY") == "sk_test_env_only"
    assert conf.get_setting("TIMEOUT") == conf.DEFAULTS["TIMEOUT"]


def test_webhook_secrets_from_environment_are_a_list(settings, monkeypatch):
    settings.STRIPE_CUSTOMERS = {"API_KEY": "sk_test_x"}
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", "whsec_old, whsec_new")
    assert conf.get_setting("WEBHOOK_SECRETS") == ["whsec_old", "whsec_new"]


def test_unknown_setting_name_is_a_programming_error():
    with pytest.raises(KeyError, match="NOPE"):
        conf.get_setting("NOPE")


def test_settings_that_is_not_a_dict_is_refused(settings):
    settings.STRIPE_CUSTOMERS = "sk_test_oops"
    with pytest.raises(ImproperlyConfigured, match="must be a dict, not str"):
        conf.get_setting("API_BASE")

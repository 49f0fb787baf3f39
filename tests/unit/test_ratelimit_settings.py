"""``RATE_LIMIT`` and ``RATE_LIMIT_BACKEND``: the defaults by key mode, what wins, off, one
limiter per key and API base shared by the clients of a process, and the checks."""

from __future__ import annotations

import sys

import pytest
from django.core import checks
from django.core.exceptions import ImproperlyConfigured

from django_stripe_customers import ratelimits
from django_stripe_customers.clients import clear_client_cache, get_client
from django_stripe_customers.ratelimits import RedisRateLimiter, bucket_name
from django_stripe_customers.stripe import LocalRateLimiter
from django_stripe_customers.stripe.limits import PACE, StripeLimits, endpoint_of

BASE = "http://127.0.0.1:9"
SECRET = "DONOTLEAK0123456789"


@pytest.fixture(autouse=True)
def fresh_clients(monkeypatch):
    monkeypatch.delenv("STRIPE_API_KEY", raising=False)
    clear_client_cache()
    yield
    clear_client_cache()


def configure(settings, **values):
    settings.STRIPE_CUSTOMERS = {"API_KEY": f"sk_test_{SECRET}", "API_BASE": BASE, **values}


@pytest.mark.parametrize(
    ("key", "rate"),
    [
        (f"sk_test_{SECRET}", 25),
        (f"rk_test_{SECRET}", 25),
        (f"sk_live_{SECRET}", 100),
        (f"rk_live_{SECRET}", 100),
        (f"sk_{SECRET}", 25),  # the mode is not in the prefix: the lower limit is the safe one
    ],
)
def test_the_default_follows_the_keys_mode(settings, key, rate):
    """Stripe's global limit for the key's mode, paced at ``PACE`` of it, and each endpoint's
    own at 25/s (the Search API's at 20), paced the same, evenly (a burst of one)."""
    configure(settings, API_KEY=key)
    limits = get_client().rate_limiter
    assert isinstance(limits, StripeLimits)
    limiter = limits.global_limiter
    assert isinstance(limiter, LocalRateLimiter)
    assert limiter.max_rate == limiter.rate == rate * PACE
    listing = limits.endpoint_limiter("GET /v1/customers")
    assert listing is not None and listing.max_rate == 25 * PACE
    search = limits.endpoint_limiter("GET /v1/customers/search")
    assert search is not None and search.max_rate == 20 * PACE
    assert limits.endpoint_limiter("GET /v1/customers") is listing, "one bucket per endpoint"


def test_an_endpoints_limit_can_be_set_or_turned_off(settings):
    configure(settings, ENDPOINT_RATE_LIMITS={"GET /v1/customers": 40, "GET /v1/events": 0})
    limits = get_client().rate_limiter
    assert isinstance(limits, StripeLimits)
    listing = limits.endpoint_limiter("GET /v1/customers")
    assert listing is not None and listing.max_rate == 40 * PACE
    assert limits.endpoint_limiter("GET /v1/events") is None
    retrieve = limits.endpoint_limiter("GET /v1/customers/{id}")
    assert retrieve is not None and retrieve.max_rate == 25 * PACE


@pytest.mark.parametrize(
    ("method", "path", "endpoint"),
    [
        ("GET", "/v1/customers", "GET /v1/customers"),
        ("get", "/v1/customers/cus_123", "GET /v1/customers/{id}"),
        ("POST", "/v1/customers/cus_123/tax_ids/txi_9", "POST /v1/customers/{id}/tax_ids/{id}"),
        ("GET", "/v1/customers/search", "GET /v1/customers/search"),
        ("GET", "/v1/account", "GET /v1/account"),
        ("DELETE", "/v1/customers/cus_1?x=1", "DELETE /v1/customers/{id}"),
    ],
)
def test_an_endpoint_is_its_method_and_path_template(method, path, endpoint):
    assert endpoint_of(method, path) == endpoint


@pytest.mark.parametrize("key", [f"sk_test_{SECRET}", f"sk_live_{SECRET}"])
def test_an_explicit_rate_wins_over_the_mode(settings, key):
    configure(settings, API_KEY=key, RATE_LIMIT=7.5)
    assert get_client().rate_limiter.max_rate == 7.5 * PACE, "the limit, paced at 95%"


def test_zero_turns_the_limit_off(settings):
    configure(settings, RATE_LIMIT=0)
    assert get_client().rate_limiter is None


def test_a_client_asked_for_without_a_limiter_has_none(settings):
    configure(settings)
    assert get_client(rate_limiter=None).rate_limiter is None


def test_clients_of_one_key_and_base_share_one_limiter(settings):
    configure(settings)
    first = get_client()
    other_timeout = get_client(timeout=3)
    assert other_timeout is not first
    assert other_timeout.rate_limiter is first.rate_limiter
    configure(settings, API_KEY="sk_test_another")
    assert get_client().rate_limiter is not first.rate_limiter
    configure(settings, API_BASE="http://127.0.0.1:10")
    assert get_client().rate_limiter is not first.rate_limiter


def test_a_changed_rate_gives_a_new_limiter_and_client(settings):
    configure(settings, RATE_LIMIT=10)
    slow = get_client()
    configure(settings, RATE_LIMIT=20)
    fast = get_client()
    assert fast is not slow and fast.rate_limiter.max_rate == 20 * PACE


def test_the_bucket_names_the_mode_never_the_key(settings):
    name = bucket_name(f"sk_live_{SECRET}", "https://api.stripe.com/")
    assert name.startswith("live:") and SECRET not in name
    assert name == bucket_name(f"sk_live_{SECRET}", "https://api.stripe.com")
    assert name != bucket_name(f"sk_live_{SECRET}x", "https://api.stripe.com")
    configure(settings, RATE_LIMIT_BACKEND="redis://127.0.0.1:6379/0")
    limits = get_client().rate_limiter
    assert isinstance(limits, StripeLimits)
    limiter = limits.global_limiter
    assert isinstance(limiter, RedisRateLimiter)
    endpoint = limits.endpoint_limiter("GET /v1/customers")
    assert isinstance(endpoint, RedisRateLimiter) and SECRET not in endpoint.key
    assert limiter.key.startswith("django_stripe_customers:ratelimit:test:")
    assert SECRET not in limiter.key and SECRET not in repr(limiter)
    assert SECRET not in repr(get_client())


def test_without_the_redis_package_local_works_and_redis_says_what_is_missing(
    settings, monkeypatch
):
    monkeypatch.setitem(sys.modules, "redis", None)  # `import redis` raises ImportError
    configure(settings)
    limits = get_client().rate_limiter
    assert isinstance(limits, StripeLimits)
    assert isinstance(limits.global_limiter, LocalRateLimiter)
    configure(settings, RATE_LIMIT_BACKEND="redis://127.0.0.1:6379/0")
    with pytest.raises(ImproperlyConfigured, match=r"redis package is not installed"):
        get_client()
    found = {m.id: m for m in checks.run_checks(tags=["stripe_customers"])}
    assert "stripe_customers.E008" in found
    configure(settings, RATE_LIMIT_BACKEND="redis://127.0.0.1:6379/0", RATE_LIMIT=0)
    assert get_client().rate_limiter is None  # no limit: Redis is never needed


def test_an_unknown_backend_is_refused(settings):
    configure(settings, RATE_LIMIT_BACKEND="memcached://127.0.0.1")
    with pytest.raises(ImproperlyConfigured, match="RATE_LIMIT_BACKEND"):
        get_client()


@pytest.mark.parametrize("rate", ["25", -1, True, float("nan"), float("inf"), [25]])
def test_e003_a_bad_rate_limit(settings, rate):
    configure(settings, RATE_LIMIT=rate)
    messages = checks.run_checks(tags=["stripe_customers"])
    assert any(m.id == "stripe_customers.E003" and "RATE_LIMIT" in m.msg for m in messages)


@pytest.mark.parametrize("backend", ["memcached://127.0.0.1", "Local", 6379, "", ["local"]])
def test_e003_a_bad_rate_limit_backend(settings, backend):
    configure(settings, RATE_LIMIT_BACKEND=backend)
    messages = checks.run_checks(tags=["stripe_customers"])
    assert any(m.id == "stripe_customers.E003" and "RATE_LIMIT_BACKEND" in m.msg for m in messages)


@pytest.mark.parametrize(
    "values",
    [
        {},
        {"RATE_LIMIT": None},
        {"RATE_LIMIT": 0},
        {"RATE_LIMIT": 12},
        {"RATE_LIMIT": 2.5},
        {"RATE_LIMIT_BACKEND": "local"},
        {"RATE_LIMIT_BACKEND": "redis://127.0.0.1:6379/3"},
        {"RATE_LIMIT_BACKEND": "rediss://cache.example:6380/0"},
        {"RATE_LIMIT_BACKEND": "unix:///run/redis.sock?db=2"},
    ],
)
def test_valid_rate_limit_settings_are_silent(settings, values):
    configure(settings, WEBHOOK_SECRETS=["whsec_x"], **values)
    messages = checks.run_checks(tags=["stripe_customers"])
    assert [m.id for m in messages if "RATE_LIMIT" in m.msg or m.id.endswith("E008")] == []


def test_the_limiter_cache_is_per_process_and_reset_with_the_clients(settings):
    configure(settings)
    before = get_client().rate_limiter
    clear_client_cache()
    assert get_client().rate_limiter is not before
    assert ratelimits.limiter_for(f"sk_test_{SECRET}", BASE, None) is get_client().rate_limiter

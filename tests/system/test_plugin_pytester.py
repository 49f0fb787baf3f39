"""The pytest plugin as a user gets it: installed package, fresh project, no conftest of ours.

Each case writes a throwaway project with ``pytester`` and runs pytest on it in a subprocess;
the plugin comes only from the package's ``pytest11`` entry point.
"""

from __future__ import annotations

from importlib.metadata import entry_points
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[2]

USER_TEST = """
import requests

HEADERS = {"Authorization": "Bearer sk_test_user"}


def test_create_and_retrieve(stripe_emulator):
    created = requests.post(
        f"{stripe_emulator.url}/v1/customers",
        data={"email": "user@example.com", "metadata[plan]": "pro"},
        headers=HEADERS,
    )
    assert created.status_code == 200
    customer_id = created.json()["id"]
    fetched = requests.get(f"{stripe_emulator.url}/v1/customers/{customer_id}", headers=HEADERS)
    assert fetched.json()["email"] == "user@example.com"
    assert fetched.json()["metadata"] == {"plan": "pro"}
    assert stripe_emulator.count("POST", "/v1/customers") == 1


def test_each_test_starts_empty(stripe_emulator):
    assert stripe_emulator.customers == {}
    assert stripe_emulator.requests == []


def test_same_server_for_the_session(stripe_emulator, stripe_emulator_server):
    assert stripe_emulator is stripe_emulator_server
"""


@pytest.fixture
def fresh_project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A project that knows nothing of ours: no DJANGO_SETTINGS_MODULE from this session."""
    monkeypatch.delenv("DJANGO_SETTINGS_MODULE", raising=False)
    monkeypatch.delenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    return pytester


def test_plugin_is_registered_and_packaged() -> None:
    """pyproject's ``pytest11`` entry point names the plugin; ``testing`` ships in the wheel."""
    plugins = {ep.name: ep.value for ep in entry_points(group="pytest11")}
    assert plugins["stripe_customers"] == "django_stripe_customers.testing.pytest_plugin"
    setuptools = pytest.importorskip("setuptools")
    packages = setuptools.find_packages(str(ROOT), include=["django_stripe_customers*"])
    assert "django_stripe_customers.testing" in packages


def test_stripe_emulator_fixture_in_a_fresh_project(fresh_project: pytest.Pytester) -> None:
    """Issue 4: "a user can pip install the package and use the stripe_emulator fixture"."""
    fresh_project.makepyfile(test_user=USER_TEST)
    result = fresh_project.runpytest_subprocess("-p", "no:django", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)


def test_stripe_settings_points_django_at_the_emulator(fresh_project: pytest.Pytester) -> None:
    """``stripe_settings`` sets ``STRIPE_CUSTOMERS`` API_KEY/API_BASE, keeping other keys, and
    pytest-django's ``settings`` restores it after the test."""
    fresh_project.makepyfile(
        user_settings="""
SECRET_KEY = "user-project"
INSTALLED_APPS = []
DATABASES = {}
STRIPE_CUSTOMERS = {"WEBHOOK_SECRETS": ["whsec_user"], "API_KEY": "sk_live_never_used"}
""",
        test_settings="""
import requests


def test_settings_point_at_the_emulator(stripe_settings, settings):
    conf = settings.STRIPE_CUSTOMERS
    assert conf["API_BASE"] == stripe_settings.url
    assert conf["API_KEY"] == "sk_test_emulator"
    assert conf["WEBHOOK_SECRETS"] == ["whsec_user"]
    response = requests.get(
        conf["API_BASE"] + "/v1/customers",
        headers={"Authorization": "Bearer " + conf["API_KEY"]},
    )
    assert response.status_code == 200


def test_settings_restored_afterwards(settings):
    assert settings.STRIPE_CUSTOMERS["API_KEY"] == "sk_live_never_used"
    assert "API_BASE" not in settings.STRIPE_CUSTOMERS
""",
    )
    result = fresh_project.runpytest_subprocess("--ds=user_settings", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


def test_stripe_settings_without_pytest_django_skips_with_a_reason(
    fresh_project: pytest.Pytester,
) -> None:
    """Without pytest-django, ``stripe_settings`` skips and says what is missing."""
    fresh_project.makepyfile(
        test_no_django="""
def test_needs_django(stripe_settings):
    raise AssertionError("should have been skipped")
"""
    )
    result = fresh_project.runpytest_subprocess("-p", "no:django", "-p", "no:cacheprovider", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*stripe_settings needs pytest-django*"])


PACED_TESTS = """
import time

import pytest
import requests

from django_stripe_customers.testing import Limits

HEADERS = {"Authorization": "Bearer sk_test_user"}


def get(emulator):
    return requests.get(f"{emulator.url}/v1/customers", headers=HEADERS)


@pytest.mark.stripe_emulator(latency_ms=300, rate_limit=0.5, rate_limit_burst=2)
def test_1_marked(stripe_emulator):
    assert stripe_emulator.limits == Limits(300, 0, 0.5, 2)
    started = time.perf_counter()
    statuses = [get(stripe_emulator).status_code for _ in range(3)]
    assert time.perf_counter() - started >= 0.9
    assert statuses == [200, 200, 429]
    assert stripe_emulator.count(status=429) == 1


def test_2_after_a_marked_test_no_latency_and_no_limit(stripe_emulator):
    assert stripe_emulator.limits == Limits()
    assert [get(stripe_emulator).status_code for _ in range(10)] == [200] * 10


@pytest.mark.stripe_emulator(rate_limit=1, rate_limit_burst=1)
class TestMarkedClass:
    def test_3_in_a_marked_class(self, stripe_emulator):
        assert [get(stripe_emulator).status_code for _ in range(2)] == [200, 429]


def test_4_the_server_itself_is_back_to_no_limit(stripe_emulator_server):
    assert stripe_emulator_server.limits == Limits()
"""

BAD_MARKERS = """
import pytest


@pytest.mark.stripe_emulator(300)
def test_positional(stripe_emulator):
    pass


@pytest.mark.stripe_emulator(latency=300)
def test_misspelt(stripe_emulator):
    pass


@pytest.mark.stripe_emulator(rate_limit=-1)
def test_impossible(stripe_emulator):
    pass
"""


def test_stripe_emulator_marker_sets_the_pace_for_one_test(fresh_project: pytest.Pytester) -> None:
    """Issue 14: ``@pytest.mark.stripe_emulator(latency_ms=..., rate_limit=...)`` is registered
    (``--strict-markers`` passes), applies to the test or class it marks, and the session's
    emulator is back to no latency and no limit afterwards."""
    fresh_project.makepyfile(test_paced=PACED_TESTS)
    result = fresh_project.runpytest_subprocess(
        "-p", "no:django", "-p", "no:cacheprovider", "--strict-markers"
    )
    result.assert_outcomes(passed=4)


def test_stripe_emulator_marker_misuse_is_an_error_that_says_why(
    fresh_project: pytest.Pytester,
) -> None:
    fresh_project.makepyfile(test_bad=BAD_MARKERS)
    result = fresh_project.runpytest_subprocess("-p", "no:django", "-p", "no:cacheprovider")
    result.assert_outcomes(errors=3)
    result.stdout.fnmatch_lines_random(
        [
            "*takes keyword arguments only*",
            "*unexpected keyword argument 'latency'*",
            "*rate_limit must be > 0*",
        ]
    )


def test_stripe_emulator_marker_paces_stripe_settings_too(fresh_project: pytest.Pytester) -> None:
    """A Django project's ``stripe_settings`` is the same server, at the marked pace."""
    fresh_project.makepyfile(
        user_settings="""
SECRET_KEY = "user-project"
INSTALLED_APPS = []
DATABASES = {}
""",
        test_settings_paced="""
import pytest
import requests


@pytest.mark.stripe_emulator(rate_limit=1, rate_limit_burst=1)
def test_paced_settings(stripe_settings, settings):
    conf = settings.STRIPE_CUSTOMERS
    headers = {"Authorization": "Bearer " + conf["API_KEY"]}
    statuses = [
        requests.get(conf["API_BASE"] + "/v1/customers", headers=headers).status_code
        for _ in range(2)
    ]
    assert statuses == [200, 429]
""",
    )
    result = fresh_project.runpytest_subprocess("--ds=user_settings", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)

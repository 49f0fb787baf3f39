"""Browser tests of the admin: Debian's Chromium, headless, driven by Playwright, against the
example project served by pytest-django's live server and the Stripe emulator.

Fixtures:
- ``browser`` (package): a headless Chromium (``/usr/bin/chromium`` or ``$CHROMIUM``). Where
  Playwright or Chromium is missing the tests are skipped, loudly (a banner at the end of the
  run, ``tests/support/banners.py``); ``REQUIRE_BROWSER=1`` turns that skip into a failure.
- ``live_server`` (package, replaces pytest-django's for these tests): the same server class,
  started with ``STATIC_URL``/``STATIC_ROOT`` set so the admin's CSS and JavaScript are served
  (the test settings have no staticfiles app).
- ``page``: a fresh browser context at 1280x900 on the live server; ``example_project`` settings
  (its URLconf and templates) and the emulator (``stripe_settings``) are applied to every test.

Playwright's sync API keeps an asyncio loop running in this thread while it is started, so
Django's ORM would refuse the test's own queries as "async unsafe": ``DJANGO_ALLOW_ASYNC_UNSAFE``
is set for exactly as long as the browser runs (package scope, so the rest of the suite runs
without it).
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import django
import pytest
from django.test.utils import override_settings
from pytest_django.live_server_helper import LiveServer

from tests.support.banners import BROWSER_SKIPPED

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_PROJECT = ROOT / "example_project"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
HEADLESS_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
VIEWPORT = {"width": 1280, "height": 900}
STATIC_URL = "/static/"


def browser_unavailable() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if find_spec("playwright") is None:
        return "the playwright package is not installed (pip install -e '.[dev]')"
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        return (
            f"no Chromium at {CHROMIUM} (apt-get install -y chromium as root, "
            "or set CHROMIUM to its path)"
        )
    return None


@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    reason = browser_unavailable()
    if reason is not None:
        if os.environ.get("REQUIRE_BROWSER"):
            pytest.fail(f"REQUIRE_BROWSER is set but {reason}", pytrace=False)
        pytest.skip(f"{BROWSER_SKIPPED} {reason}")
    from playwright.sync_api import sync_playwright

    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=HEADLESS_FLAGS
            )
            yield chromium
            chromium.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


def _collect_static(target: Path) -> Path:
    """What ``collectstatic`` would gather for these pages: the admin's files and ours."""
    admin_static = Path(django.__file__).parent / "contrib" / "admin" / "static"
    ours = ROOT / "django_stripe_customers" / "static"
    for source in (admin_static, ours):
        shutil.copytree(source, target, dirs_exist_ok=True)
    return target


@pytest.fixture(scope="package")
def static_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _collect_static(tmp_path_factory.mktemp("static"))


@pytest.fixture(scope="package")
def live_server(
    request: pytest.FixtureRequest, django_db_setup: Any, static_root: Path
) -> Iterator[LiveServer]:
    """pytest-django's live server, started with static files configured (its file handler
    reads ``STATIC_URL`` once, at start)."""
    addr = (
        request.config.getvalue("liveserver")
        or os.getenv("DJANGO_LIVE_TEST_SERVER_ADDRESS")
        or "localhost"
    )
    with override_settings(STATIC_URL=STATIC_URL, STATIC_ROOT=str(static_root)):
        server = LiveServer(addr)
    yield server
    server.stop()


@pytest.fixture(scope="package")
def example_project_on_path() -> Iterator[None]:
    """``example_project.urls`` and the demo app importable, as ``manage.py`` makes them."""
    sys.path.insert(0, str(EXAMPLE_PROJECT))
    yield
    sys.path.remove(str(EXAMPLE_PROJECT))


@pytest.fixture(autouse=True)
def example_project_settings(
    settings: Any, stripe_settings: Any, static_root: Path, example_project_on_path: None
) -> Any:
    """The example project's URLconf and templates, static files, and the emulator."""
    settings.ROOT_URLCONF = "example_project.urls"
    settings.TEMPLATES = [
        {**settings.TEMPLATES[0], "DIRS": [str(EXAMPLE_PROJECT / "templates")]},
        *settings.TEMPLATES[1:],
    ]
    settings.STATIC_URL = STATIC_URL
    settings.STATIC_ROOT = str(static_root)
    return stripe_settings


@pytest.fixture
def page(browser: Any, live_server: LiveServer) -> Iterator[Any]:
    context = browser.new_context(viewport=VIEWPORT, base_url=live_server.url)
    context.set_default_timeout(15_000)
    tab = context.new_page()
    yield tab
    context.close()

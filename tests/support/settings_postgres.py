"""The real tier: PostgreSQL at 127.0.0.1:5432, database ``test`` (trust auth).

The test database is named for this run (``test_dsc_<run>``, and pytest-django adds ``_gw0``,
``_gw1``... for each xdist worker), so two runs at once, on one server, never share or drop
each other's database. ``<run>`` is xdist's id of the run, the same in every worker, or this
process's id without xdist. ``PGTESTDATABASE`` names it explicitly.
"""

from __future__ import annotations

import os

from tests.support.settings import *  # noqa: F403

RUN = os.environ.get("PYTEST_XDIST_TESTRUNUID", "")[:12] or str(os.getpid())

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "HOST": os.environ.get("PGHOST", "127.0.0.1"),
        "PORT": os.environ.get("PGPORT", "5432"),
        "NAME": os.environ.get("PGDATABASE", "test"),
        "USER": os.environ.get("PGUSER", "postgres"),
        "PASSWORD": os.environ.get("PGPASSWORD", ""),
        "TEST": {"NAME": os.environ.get("PGTESTDATABASE", f"test_dsc_{RUN}")},
    }
}

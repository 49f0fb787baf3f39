"""Settings shared by the pull benchmark's child processes (ours and the peers').

The database is chosen by environment variables set by ``benchmarks/pull.py``:

- ``BENCH_DB``: ``sqlite`` (default) or ``postgres``;
- ``BENCH_SQLITE_PATH``: the SQLite file (a real file in a temp dir, never ``:memory:``);
- ``BENCH_PG_NAME`` and the usual ``PGHOST``/``PGPORT``/``PGUSER``/``PGPASSWORD``;
- ``BENCH_PG_SERVER_SIDE_BINDING=1``: psycopg server-side binding (an experiment, not default).

No import of either library here: this module is loaded in our venv and in ``.venv-djstripe``.
"""

from __future__ import annotations

import os
from typing import Any

SECRET_KEY = "benchmark-only-not-secret"
DEBUG = False  # DEBUG=True would keep every query in memory and skew peak RSS
USE_TZ = True
TIME_ZONE = "UTC"
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LOGGING_CONFIG = None  # no logging setup cost, nothing printed per customer

BENCH_API_BASE = os.environ.get("BENCH_API_BASE", "http://127.0.0.1:9")
BENCH_API_KEY = os.environ.get("BENCH_API_KEY", "sk_test_" + "0" * 24)


def database() -> dict[str, Any]:
    backend = os.environ.get("BENCH_DB", "sqlite")
    if backend == "sqlite":
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": os.environ["BENCH_SQLITE_PATH"]}
    if backend == "postgres":
        # BENCH_PG_SERVER_SIDE_BINDING=1: psycopg's server-side binding, an experiment knob
        # (off by default, as in Django; it barely changed our pull: 4.9 s -> 4.5 s at 10k).
        options = (
            {"server_side_binding": True} if os.environ.get("BENCH_PG_SERVER_SIDE_BINDING") else {}
        )
        return {
            "OPTIONS": options,
            "ENGINE": "django.db.backends.postgresql",
            "HOST": os.environ.get("PGHOST", "127.0.0.1"),
            "PORT": os.environ.get("PGPORT", "5432"),
            "NAME": os.environ.get("BENCH_PG_NAME", "bench_stripe_customers"),
            "USER": os.environ.get("PGUSER", "postgres"),
            "PASSWORD": os.environ.get("PGPASSWORD", ""),
        }
    raise ValueError(f"BENCH_DB must be sqlite or postgres, not {backend!r}")


DATABASES = {"default": database()}

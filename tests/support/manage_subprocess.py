"""``manage(tmp_path, *args, **env)``: ``python -m django ...`` in a subprocess, as a user runs it.

Settings are ``tests.support.settings_file_db`` (a SQLite file under ``tmp_path``, Stripe on a
port where nothing listens); ``env`` adds variables that module reads (``TEST_NO_API_KEY``,
``TEST_API_BASE``, ``STRIPE_TEST_MAX_RETRIES``). ``STRIPE_API_KEY`` is never inherited.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def manage(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DJANGO_SETTINGS_MODULE": "tests.support.settings_file_db",
        "TEST_DB_PATH": str(tmp_path / "db.sqlite3"),
        **env,
    }
    for inherited in ("STRIPE_API_KEY", "STRIPE_WEBHOOK_SECRET"):
        environ.pop(inherited, None)
    command = [sys.executable, "-m", "django", *args]
    return subprocess.run(command, env=environ, capture_output=True, text=True, timeout=60)

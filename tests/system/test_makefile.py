"""The Makefile's housekeeping targets, run for real in a scratch directory."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

BUILT = ["build/lib/x.py", "dist/x.whl", "x.egg-info/PKG-INFO", ".pytest_cache/x",
         ".mypy_cache/x", ".ruff_cache/x", "example_project/db.sqlite3"]  # fmt: skip
VENVS = [".venv/bin/python", ".venv-py310-dj42/bin/python", ".venv-djstripe/bin/python"]


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_clean_keeps_the_venvs_and_distclean_removes_everything(tmp_path):
    for name in BUILT + VENVS + ["README.md"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")

    def make(target: str) -> None:
        done = subprocess.run(
            ["make", "-f", str(ROOT / "Makefile"), target],
            cwd=tmp_path, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr

    make("clean")
    assert [name for name in BUILT if (tmp_path / name).exists()] == []
    assert all((tmp_path / name).exists() for name in VENVS), "clean keeps the venvs"
    make("distclean")
    assert [name for name in VENVS if (tmp_path / name).exists()] == []
    assert (tmp_path / "README.md").exists(), "the sources are left alone"

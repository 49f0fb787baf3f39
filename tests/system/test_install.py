"""The README's "Install into your project", followed as written by a new user.

A copy of this checkout, a fresh virtualenv (nothing of ours in it: the wheel and its
dependencies from the package registry), a fresh ``django-admin startproject``, and the local
Stripe the wheel ships (``python -m django_stripe_customers.testing``). The README's blocks
marked ``<!-- install: ... -->`` are taken from README.md and applied in order: shell blocks run
by bash with the venv first on PATH, ``append to settings.py``/``urls.py`` blocks appended to
the project's files. Then, inside the project (tests/support/in_project.py): an admin change form
saved, and a view-only staff user's PATCH through the API.

The venv gets the Django version this suite runs on (pip constraint), so the project is what
that version's ``startproject`` makes. Marked ``standalone``: the PostgreSQL tier and the
version matrix leave it to the SQLite tier.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
import venv
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import django
import pytest
import requests

from tests.support.processes import stop

ROOT = Path(__file__).resolve().parents[2]
SUPPORT = Path(__file__).resolve().parents[1] / "support"
KEY = "sk_test_readme_install"
SEEDED = 3

pytestmark = [
    pytest.mark.slow,
    pytest.mark.standalone,
    # One xdist worker runs the module (``--dist loadgroup``): its project (a venv, the wheel,
    # a startproject) is made once.
    pytest.mark.xdist_group("install"),
]

_BLOCK = re.compile(r"<!-- install: (?P<what>[^>]+?) -->\s*```\w*\n(?P<body>.*?)```", re.S)


def install_blocks(readme: str) -> list[tuple[str, str]]:
    """``(what, body)`` of each marked block of the Install section, in order."""
    section = readme.split("\n## Install into your project\n", 1)[1].split("\n## ", 1)[0]
    return [(m["what"].strip(), m["body"]) for m in _BLOCK.finditer(section)]


@dataclass
class Project:
    checkout: Path
    venv: Path
    directory: Path
    env: dict[str, str]
    stripe_url: str
    outputs: dict[str, subprocess.CompletedProcess[str]]

    def run(
        self, *command: str | Path, cwd: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(part) for part in command],
            cwd=cwd or self.directory,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
        )

    def stripe_customer(self, stripe_id: str) -> dict[str, object]:
        response = requests.get(
            f"{self.stripe_url}/v1/customers/{stripe_id}",
            headers={"Authorization": f"Bearer {KEY}"},
            timeout=5,
        )
        response.raise_for_status()
        return dict(response.json())

    def in_project(self, action: str, stripe_id: str) -> dict[str, object]:
        done = self.run(self.venv / "bin" / "python", "in_project.py", action, stripe_id)
        assert done.returncode == 0, done.stdout + done.stderr
        return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def clean_env(venv_dir: Path) -> dict[str, str]:
    """The environment of a user's shell with the venv activated: nothing of this suite's."""
    inherited = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("DJANGO_", "STRIPE_", "CELERY_", "PYTEST_"))
        and name not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PGTESTDATABASE")
    }
    path = f"{venv_dir / 'bin'}{os.pathsep}{inherited.get('PATH', os.defpath)}"
    return {**inherited, "PATH": path, "VIRTUAL_ENV": str(venv_dir), "PYTHONUNBUFFERED": "1"}


def copy_checkout(target: Path) -> Path:
    """The sources of this checkout, without venvs, caches or build output."""
    ignored = shutil.ignore_patterns(
        ".git", ".venv*", ".tox", "build", "dist", "*.egg-info", "__pycache__", ".*_cache",
        "*.sqlite3", "results",
    )  # fmt: skip
    shutil.copytree(ROOT, target, ignore=ignored)
    return target


def start_emulator(
    python: Path, env: dict[str, str], log: Path
) -> tuple[subprocess.Popen[str], str]:
    with log.open("w") as output:
        process = subprocess.Popen(
            [str(python), "-m", "django_stripe_customers.testing", "--port", "0",
             "--seed", str(SEEDED), "--api-key", KEY],
            env=env, stdout=subprocess.PIPE, stderr=output, text=True,
        )  # fmt: skip
    assert process.stdout is not None
    first = process.stdout.readline()
    found = re.search(r"listening on (http://\S+)", first)
    if found is None:
        process.kill()
        raise AssertionError(f"the packaged emulator did not start: {first!r} {log.read_text()}")
    return process, found[1]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    base = tmp_path_factory.mktemp("install")
    checkout = copy_checkout(base / "checkout")
    venv_dir = base / "venv"
    venv.EnvBuilder(with_pip=True, symlinks=True).create(venv_dir)
    env = clean_env(venv_dir)
    python = venv_dir / "bin" / "python"
    outputs: dict[str, subprocess.CompletedProcess[str]] = {}

    def shell(what: str, body: str, cwd: Path) -> None:
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", body],
            cwd=cwd, env=env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        outputs[what] = done
        assert done.returncode == 0, f"{what}:\n{body}\n{done.stdout}\n{done.stderr}"

    blocks = install_blocks((ROOT / "README.md").read_text())
    assert [what for what, _ in blocks] == [
        "shell, in the checkout",
        "append to settings.py",
        "append to urls.py",
        "shell, in the project",
    ], "the README's Install section changed: update this test's expectations"
    # This tier's Django, so the project is what `startproject` of that version makes.
    (base / "constraints.txt").write_text(f"Django=={django.__version__}\n")
    env["PIP_CONSTRAINT"] = str(base / "constraints.txt")
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"

    shell("shell, in the checkout", blocks[0][1], checkout)
    run = Project(checkout, venv_dir, base / "site", env, "", outputs)
    run.directory.mkdir()
    created = run.run(venv_dir / "bin" / "django-admin", "startproject", "mysite", ".")
    assert created.returncode == 0, created.stderr
    for what, body in blocks[1:3]:
        target = run.directory / "mysite" / what.removeprefix("append to ")
        target.write_text(target.read_text() + "\n\n" + body)
    # as users' projects are: not on UTC (startproject's default)
    settings_file = run.directory / "mysite" / "settings.py"
    settings_file.write_text(settings_file.read_text() + '\nTIME_ZONE = "America/Chicago"\n')
    for helper in ("in_project.py", "html_forms.py"):
        shutil.copy(SUPPORT / helper, run.directory / helper)

    emulator, run.stripe_url = start_emulator(python, env, base / "emulator.log")
    try:
        env.update(STRIPE_API_KEY=KEY, STRIPE_API_BASE=run.stripe_url)
        shell("shell, in the project", blocks[3][1], run.directory)
        yield run
    finally:
        stop(emulator, timeout=10)


def stripe_ids(project: Project) -> list[str]:
    response = requests.get(
        f"{project.stripe_url}/v1/customers",
        headers={"Authorization": f"Bearer {KEY}"},
        timeout=5,
    )
    return sorted(customer["id"] for customer in response.json()["data"])


def test_the_wheel_installs_without_warnings_and_says_its_licence(project):
    built = project.outputs["shell, in the checkout"]
    log = built.stdout + built.stderr
    assert "Successfully built django-stripe-customers" in log
    assert "BuildBackendWarning" not in log and "deprecated" not in log, log
    (wheel,) = (project.checkout / "dist").glob("django_stripe_customers-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = archive.read(name).decode()
        assert any(n.endswith(".dist-info/licenses/LICENSE") for n in archive.namelist())
    assert "License-Expression: MIT" in metadata
    assert "Provides-Extra: redis" in metadata, "pip install django-stripe-customers[redis]"
    assert 'Requires-Dist: celery[redis]>=5.3; extra == "redis"' in metadata
    where = project.run(project.venv / "bin" / "python", "-c",
                        "import django_stripe_customers, django; "
                        "print(django_stripe_customers.__file__, django.__version__)")  # fmt: skip
    installed_from, django_version = where.stdout.split()
    assert installed_from.startswith(str(project.venv)), "the wheel, not this checkout"
    assert django_version == django.__version__


def test_migrate_check_and_pull_run_as_written(project):
    done = project.outputs["shell, in the project"]
    assert "Applying stripe_customers.0001_initial... OK" in done.stdout
    assert "ERRORS:" not in done.stderr, done.stderr
    assert f"Pulled {SEEDED} customers: {SEEDED} created" in done.stdout
    assert "Traceback" not in done.stderr


@pytest.fixture(scope="module")
def admin_edit(project: Project) -> tuple[str, dict[str, object]]:
    stripe_id = stripe_ids(project)[0]
    return stripe_id, project.in_project("admin_edit", stripe_id)


def test_an_admin_change_form_post_is_saved(admin_edit):
    _, outcome = admin_edit
    assert outcome["status"] == 302, "saved, back to the changelist"
    assert outcome["name"] == "Renamed in the admin"


def test_the_admin_edit_reaches_stripe_with_no_celery_worker_running(project, admin_edit):
    stripe_id, _ = admin_edit
    deadline = time.monotonic() + 5
    while project.stripe_customer(stripe_id)["name"] != "Renamed in the admin":
        assert time.monotonic() < deadline, "the edit never reached Stripe"
        time.sleep(0.2)


def test_the_api_refuses_a_view_only_staff_user_s_patch(project):
    stripe_id = stripe_ids(project)[-1]
    before = project.stripe_customer(stripe_id)["name"]
    outcome = project.in_project("api_patch_as_viewer", stripe_id)
    assert outcome["status"] == 403
    assert outcome["name"] == before and outcome["sync_status"] == "synced"
    assert project.stripe_customer(stripe_id)["name"] == before


def test_a_user_is_linked_to_a_pulled_customer_and_its_deletion_reaches_stripe(project):
    stripe_id = stripe_ids(project)[1]
    linked = project.in_project("link_owner", stripe_id)
    assert (linked["status"], linked["user"]) == (200, "signed-up")
    assert stripe_ids(project).count(stripe_id) == 1, "no second customer in Stripe"

    deleted = project.in_project("admin_delete", stripe_id)

    assert deleted["status"] == 302, "deleted, back to the changelist"
    assert (deleted["deleted"], deleted["user"]) == (True, "signed-up"), "a tombstone, linked"
    deadline = time.monotonic() + 5
    while not project.stripe_customer(stripe_id).get("deleted"):
        assert time.monotonic() < deadline, "the deletion never reached Stripe"
        time.sleep(0.2)


def test_a_customer_is_created_with_a_payment_method_and_a_tax_id(project):
    made = project.in_project("create_with_payment_method", "new")
    assert (made["status"], made["sync_status"]) == (201, "synced")
    response = requests.get(
        f"{project.stripe_url}/v1/customers/{made['stripe_id']}",
        params={"expand[]": "tax_ids"},
        headers={"Authorization": f"Bearer {KEY}"},
        timeout=5,
    )
    (tax_id,) = response.json()["tax_ids"]["data"]
    assert tax_id["value"] == "DE123456789", "sent with the create"


def test_bulk_created_customers_reach_stripe_and_one_deleted_is_deleted_there(project):
    made = project.in_project("bulk_create_then_delete", "new")
    assert made["status"] == 200, made
    kept, deleted = made["kept"], made["deleted_id"]
    assert project.stripe_customer(kept)["email"] == "bulk0@example.com"
    deadline = time.monotonic() + 5
    while not project.stripe_customer(deleted).get("deleted"):
        assert time.monotonic() < deadline, "the deletion never reached Stripe"
        time.sleep(0.2)

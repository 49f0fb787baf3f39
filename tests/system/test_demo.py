"""`make demo` brings up the example project with a local Stripe and no key (scripts/demo.sh)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]

# The demo has its own database and servers: the PostgreSQL tier and the version matrix leave
# it to the SQLite tier.
pytestmark = [pytest.mark.slow, pytest.mark.standalone]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def demo_env(tmp_path, demo_port, stripe_port, **extra):
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "DJANGO_"))},
        "VENV": str(Path(sys.executable).parent.parent),
        "DEMO_PORT": str(demo_port),
        "STRIPE_PORT": str(stripe_port),
        "DEMO_DB": str(tmp_path / "demo.sqlite3"),
        **extra,
    }


def test_demo_with_serve_0_runs_again_and_again_on_one_database(tmp_path):
    """Each run starts a new (empty) local Stripe: the demo starts its mirror afresh too. The
    second run finds the database the first left (every later run finds the same)."""
    for attempt in (1, 2):
        stripe_port = free_port()
        script = subprocess.Popen(
            ["bash", str(ROOT / "scripts" / "demo.sh")],
            env=demo_env(tmp_path, free_port(), stripe_port, SERVE="0"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        try:
            stdout, stderr = script.communicate(timeout=120)
        finally:
            left_behind = _stop_and_list(script)
            _kill_group(script.pid)
        done = subprocess.CompletedProcess(script.args, script.returncode, stdout, stderr)
        assert done.returncode == 0, f"run {attempt}:\n{done.stdout}{done.stderr}"
        assert not left_behind, "the demo ended before its own processes had:\n" + "\n".join(
            left_behind
        )
        assert "seeded 12 customers" in done.stdout
        assert "Pulled 12 customers: 12 created" in done.stdout
        second_pull = "Pulled 11 customers: 0 created, 0 updated, 11 unchanged, 1 marked deleted"
        assert second_pull in done.stdout
        assert "customers: 12" in done.stdout and "deleted  1" in done.stdout
        assert "Demo superuser: admin / admin" in done.stdout
        assert _port_closes(stripe_port, within=20), "the emulator stops with the demo"
    assert (tmp_path / "demo.sqlite3").exists(), "every run used the same database file"


def test_demo_serves_the_example_project_against_the_local_stripe(tmp_path):
    demo_port, stripe_port = free_port(), free_port()
    env = demo_env(tmp_path, demo_port, stripe_port)
    log = tmp_path / "demo.log"  # a file, not a pipe: a full pipe would block the demo
    with log.open("wb") as output:
        process = subprocess.Popen(
            ["bash", str(ROOT / "scripts" / "demo.sh")],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        page = None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None:
            try:
                page = requests.get(f"http://127.0.0.1:{demo_port}/", timeout=2)
                break
            except requests.ConnectionError:
                time.sleep(0.3)
        assert page is not None, "demo did not come up: " + log.read_text(errors="replace")[-3000:]
        assert page.status_code == 200
        assert f"http://127.0.0.1:{stripe_port}" in page.text
        assert "The local mirror (12 customers)" in page.text, "the seeded customers were pulled"
        assert page.text.count('class="deleted"') == 1, "the one deleted upstream is flagged"
        assert page.text.count("<code>cus_") == 12 + 5
        login = requests.get(f"http://127.0.0.1:{demo_port}/admin/login/", timeout=5)
        assert login.status_code == 200

        edit = subprocess.run(
            [sys.executable, "manage.py", "demo_remote_edit", "customer3@example.com",
             "--name", "Renamed in Stripe"],
            cwd=ROOT / "example_project",
            env={**env, "STRIPE_API_KEY": "sk_test_local",
                 "STRIPE_API_BASE": f"http://127.0.0.1:{stripe_port}"},
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert edit.returncode == 0, edit.stderr
        assert _page_shows(demo_port, "Renamed in Stripe", within=10), "the webhook applied it"
    finally:
        left_behind = _stop_and_list(process)
        closed = _port_closes(stripe_port, within=20)
        listeners = "" if closed else _listeners(stripe_port)
        _kill_group(process.pid)
    assert closed, "the emulator outlived the demo:\n" + listeners
    # Its port closed is not enough: once, in CI, the emulator stopped serving and hung on. And
    # a script that ends before its emulator leaves it an orphan, then a zombie until the
    # machine's init reaps it, when it will (in one CI run, something of the group was still
    # there 20 s on). When the script has ended, every process it started has ended and been
    # reaped.
    assert not left_behind, "the demo ended before its own processes had:\n" + "\n".join(
        left_behind
    )


def _stop_and_list(process: subprocess.Popen[str] | subprocess.Popen[bytes]) -> list[str]:
    """End the demo's script, then list what is left of its process group at once: when the
    script has ended, nothing it started may be left, not even a zombie."""
    _stop(process)
    return _group_members(process.pid)


def _group_members(group: int) -> list[str]:
    """Every process of process group ``group``, zombies too: pid, state, parent, wchan, argv."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            state, parent, process_group = stat[stat.rindex(")") + 2 :].split()[:3]
            if int(process_group) != group:
                continue
            argv = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            wchan = (entry / "wchan").read_text()
        except OSError:  # it ended while being read
            continue
        members.append(f"pid {entry.name} state {state} parent {parent} in {wchan}: {argv}")
    return members


def _kill_group(group: int) -> None:
    """Whatever the test found left of the demo is not left for the next run."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, signal.SIGKILL)


def _port_closes(port: int, within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) != 0:
                return True
        time.sleep(0.2)
    return False


def _stop(process: subprocess.Popen[str] | subprocess.Popen[bytes]) -> None:
    """End the demo's whole process group (the script, the emulator, runserver)."""
    for sig, grace in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue


def _page_shows(port: int, text: str, within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if text in requests.get(f"http://127.0.0.1:{port}/", timeout=5).text:
            return True
        time.sleep(0.2)
    return False


def _listeners(port: int) -> str:
    """Who listens on ``port`` (for the failure message)."""
    try:
        done = subprocess.run(["ss", "-ltnp", f"sport = :{port}"], capture_output=True, text=True)
    except OSError as exc:
        return f"(ss unavailable: {exc})"
    return done.stdout or done.stderr

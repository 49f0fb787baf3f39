"""Fidelity: the scenarios of ``tests/support/fidelity/scenarios.py`` against each local Stripe.

The emulator runs every scenario; localstripe (an independent implementation, started here
on a free loopback port) runs those it supports, its known deviations reported rather than
failed. At the end of the session a table says which check ran where and how it went.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
import requests

from django_stripe_customers.testing import StripeEmulator
from tests.support.fidelity.client import Api
from tests.support.fidelity.scenarios import (
    EMULATOR,
    LOCALSTRIPE,
    SCENARIOS,
    SERVERS,
    Checks,
    Scenario,
)

LOCALSTRIPE_BOOT = (
    "import sys\n"
    "import localstripe.resources as resources\n"
    # localstripe pickles its store to /tmp/localstripe.pickle on every write; keep it in memory.
    "resources.Store.dump_to_disk = lambda self: None\n"
    "from aiohttp import web\n"
    "from localstripe.server import app\n"
    "web.run_app(app, host='127.0.0.1', port=int(sys.argv[1]), print=None, access_log=None)\n"
)

Outcomes = dict[tuple[str, str], dict[str, tuple[str, str]]]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class _FidelityReport:
    """Registered as a plugin for the session: prints the table in the terminal summary."""

    def __init__(self) -> None:
        self.outcomes: Outcomes = {}

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if self.outcomes:
            for line in render_table(self.outcomes):
                terminalreporter.write_line(line)


@pytest.fixture(scope="module")
def fidelity_outcomes(request: pytest.FixtureRequest) -> Outcomes:
    """Collects every check's outcome for the table printed at the end of the session."""
    report = request.config.pluginmanager.get_plugin("fidelity-report")
    if not isinstance(report, _FidelityReport):
        report = _FidelityReport()
        request.config.pluginmanager.register(report, "fidelity-report")
    return report.outcomes


def render_table(outcomes: Outcomes) -> list[str]:
    width = max(len(f"{s} / {c}") for s, c in outcomes) + 2
    lines = ["", "Fidelity checks (pass / deviates = known deviation, reported / - = not run)"]
    lines.append(f"{'scenario / check':<{width}}" + "".join(f"{s:<14}" for s in SERVERS))
    notes: list[str] = []
    for (scenario, check), by_server in outcomes.items():
        cells = []
        for server in SERVERS:
            outcome, note = by_server.get(server, ("-", ""))
            cells.append(f"{outcome:<14}")
            if outcome in ("deviates", "agrees"):
                notes.append(f"  {server}: {scenario} / {check}: {note}")
        lines.append(f"{f'{scenario} / {check}':<{width}}" + "".join(cells))
    skipped = [
        f"  {server}: {scenario.name}: {reason}"
        for scenario in SCENARIOS
        for server, reason in scenario.not_on.items()
    ]
    if notes:
        lines += ["Known deviations:", *notes]
    if skipped:
        lines += ["Scenarios not run:", *skipped]
    return lines


@pytest.fixture(scope="module")
def localstripe_url() -> Iterator[str]:
    pytest.importorskip("localstripe")
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-c", LOCALSTRIPE_BOOT, str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                requests.delete(f"{url}/_config/data", timeout=1)
                break
            except requests.ConnectionError:
                if process.poll() is not None or time.monotonic() > deadline:
                    stderr = process.stderr.read().decode() if process.stderr else ""
                    pytest.fail(f"localstripe did not start: {stderr[-2000:]}")
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


@pytest.fixture(scope="module")
def emulator_server() -> Iterator[StripeEmulator]:
    with StripeEmulator() as emulator:
        yield emulator


def _cases() -> list[object]:
    cases: list[object] = []
    for scenario in SCENARIOS:
        for server in scenario.servers:
            marks = [pytest.mark.localstripe] if server == LOCALSTRIPE else []
            cases.append(
                pytest.param(scenario, server, id=f"{scenario.name}-{server}", marks=marks)
            )
    return cases


@pytest.mark.parametrize(("scenario", "server"), _cases())
def test_scenario(
    scenario: Scenario,
    server: str,
    request: pytest.FixtureRequest,
    fidelity_outcomes: Outcomes,
) -> None:
    """Run one scenario on one server; each check's source is cited in the scenario."""
    if server == EMULATOR:
        emulator: StripeEmulator = request.getfixturevalue("emulator_server")
        emulator.reset()
        base_url = emulator.url
    else:
        base_url = request.getfixturevalue("localstripe_url")
        requests.delete(f"{base_url}/_config/data", timeout=5).raise_for_status()

    def record(scenario_name: str, check: str, on: str, outcome: str, note: str) -> None:
        fidelity_outcomes.setdefault((scenario_name, check), {})[on] = (outcome, note)

    api = Api(base_url)
    try:
        scenario.run(api, Checks(scenario.name, server, record))
    finally:
        api.close()


def test_every_scenario_runs_on_the_emulator() -> None:
    """The emulator is the reference target: no scenario may skip it."""
    assert all(EMULATOR in scenario.servers for scenario in SCENARIOS)

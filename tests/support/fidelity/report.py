"""The fidelity table printed at the end of a run: which check ran on which server, and how.

Each scenario test records its checks in its report's ``user_properties`` (``PROPERTY``), so
the table is built where the reports arrive: the one pytest process, or pytest-xdist's
controller when the tests ran in workers. ``FidelityReport`` is registered by
``tests/conftest.py``.
"""

from __future__ import annotations

from typing import Any

import pytest

from .scenarios import SCENARIOS, SERVERS

PROPERTY = "fidelity"

Outcomes = dict[tuple[str, str], dict[str, tuple[str, str]]]


class FidelityReport:
    """A pytest plugin: collects the recorded checks and prints the table in the summary."""

    def __init__(self) -> None:
        self.outcomes: Outcomes = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when != "call":
            return
        for name, value in report.user_properties:
            if name == PROPERTY:
                scenario, check, server, outcome, note = value
                self.outcomes.setdefault((scenario, check), {})[server] = (outcome, note)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.outcomes:
            for line in render_table(self.outcomes):
                terminalreporter.write_line(line)


def render_table(outcomes: Outcomes) -> list[str]:
    width = max(len(f"{s} / {c}") for s, c in outcomes) + 2
    lines = ["", "Fidelity checks (pass / deviates = known deviation, reported / - = not run)"]
    lines.append(f"{'scenario / check':<{width}}" + "".join(f"{s:<14}" for s in SERVERS))
    notes: list[str] = []
    for (scenario, check), by_server in sorted(outcomes.items()):
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

"""A loud banner at the end of the run when the browser tests were skipped.

The browser fixture skips with a reason that starts with ``BROWSER_SKIPPED``; this plugin
(registered by ``tests/conftest.py``) sees the skip reports where they arrive, in the one
pytest process or in pytest-xdist's controller, and prints the banner in the summary.
"""

from __future__ import annotations

from typing import Any

import pytest

BROWSER_SKIPPED = "!!! browser tests skipped:"


class BrowserSkipBanner:
    def __init__(self) -> None:
        self.reasons: list[str] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if not report.skipped or not isinstance(report.longrepr, tuple):
            return
        message = str(report.longrepr[2]).removeprefix("Skipped: ")
        if message.startswith(BROWSER_SKIPPED):
            reason = message.removeprefix(BROWSER_SKIPPED).strip()
            if reason not in self.reasons:
                self.reasons.append(reason)

    @pytest.hookimpl(trylast=True)
    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.reasons:
            return
        bar = "!" * 88
        terminalreporter.write_line("")
        terminalreporter.write_line(bar, red=True, bold=True)
        for reason in self.reasons:
            terminalreporter.write_line(
                f"!!! SKIPPED: the admin browser tests. {reason}", red=True, bold=True
            )
        terminalreporter.write_line(
            "!!! The admin was NOT tested in a browser. Install Chromium and run again.",
            red=True,
            bold=True,
        )
        terminalreporter.write_line(bar, red=True, bold=True)

"""Fidelity: the scenarios of ``tests/support/fidelity/scenarios.py`` against each local Stripe.

The emulator runs every scenario; localstripe (an independent implementation, the session's
server of ``tests/conftest.py``) runs those it supports, its known deviations reported rather
than failed. At the end of the run a table says which check ran where and how it went
(``tests/support/fidelity/report.py``).
"""

from __future__ import annotations

import pytest

from django_stripe_customers.testing import StripeEmulator
from tests.support.fidelity.client import Api
from tests.support.fidelity.report import PROPERTY
from tests.support.fidelity.scenarios import (
    EMULATOR,
    LOCALSTRIPE,
    SCENARIOS,
    Checks,
    Scenario,
)


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
def test_scenario(scenario: Scenario, server: str, request: pytest.FixtureRequest) -> None:
    """Run one scenario on one server; each check's source is cited in the scenario."""
    if server == EMULATOR:
        emulator: StripeEmulator = request.getfixturevalue("stripe_emulator")
        base_url = emulator.url
    else:
        base_url = request.getfixturevalue("localstripe").url

    def record(scenario_name: str, check: str, on: str, outcome: str, note: str) -> None:
        request.node.user_properties.append((PROPERTY, (scenario_name, check, on, outcome, note)))

    api = Api(base_url)
    try:
        scenario.run(api, Checks(scenario.name, server, record))
    finally:
        api.close()


def test_every_scenario_runs_on_the_emulator() -> None:
    """The emulator is the reference target: no scenario may skip it."""
    assert all(EMULATOR in scenario.servers for scenario in SCENARIOS)

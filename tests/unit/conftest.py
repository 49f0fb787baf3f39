"""Unit tests: pure functions and in-memory objects. No database, no socket, no subprocess.

A unit test that opens a network connection or starts a process fails here, naming what it
did: it belongs in ``tests/integration/`` or ``tests/system/``. (pytest-django already refuses
database access to a test without the ``django_db`` mark.)
"""

from __future__ import annotations

import socket
import subprocess
from typing import Any

import pytest


class NotAUnitTest(AssertionError):
    pass


@pytest.fixture(autouse=True)
def no_sockets_no_subprocesses(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest):
    if request.node.get_closest_marker("django_db"):
        raise NotAUnitTest(f"{request.node.nodeid} uses the database: move it to integration/")

    def connect(self: socket.socket, address: Any) -> None:
        raise NotAUnitTest(f"a unit test connected to {address!r}: move it to tests/integration/")

    def popen(*args: Any, **kwargs: Any) -> None:
        raise NotAUnitTest(f"a unit test started {args[1:2]!r}: move it to tests/system/")

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect)
    monkeypatch.setattr(subprocess.Popen, "__init__", popen)

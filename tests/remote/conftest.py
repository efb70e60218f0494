"""Private VictoriaMetrics and Prometheus per test (skipped where not installed; CI fails)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import _require
from tests.remote.servers import Prometheus, VictoriaMetrics


@pytest.fixture
def victoria(tmp_path: Path) -> Iterator[VictoriaMetrics]:
    _require("victoria-metrics")
    server = VictoriaMetrics(tmp_path / "vm")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[Prometheus]:
    _require("prometheus")
    server = Prometheus(tmp_path / "prom")
    server.start()
    yield server
    server.stop()


@pytest.fixture(params=["victoria-metrics", "prometheus"])
def tsdb(request: pytest.FixtureRequest) -> VictoriaMetrics | Prometheus:
    """The same test against both servers."""
    return request.getfixturevalue("victoria" if request.param == "victoria-metrics"
                                   else "prometheus")

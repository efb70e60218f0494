"""SNMP fixtures: one private snmpd and one snmpsim per test session (they are read-only)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import _require
from tests.snmp.agents import (
    Snmpd,
    Snmpsim,
    recorded_walk,
    sensor_records,
    switch_records,
    ups_records,
    write_snmprec,
)

SIM_DEVICES = 60


@pytest.fixture(scope="session")
def snmpd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Snmpd]:
    _require("snmpd")
    _require("snmpget")
    agent = Snmpd(tmp_path_factory.mktemp("snmpd")).start()
    yield agent
    agent.stop()


@pytest.fixture(scope="session")
def snmpsim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Snmpsim]:
    """snmpsim serving SIM_DEVICES switches (communities sw000...) plus `ups` and `sensors`,
    and recorded walks of real devices: `linux`, `winxp` (no ifXTable), `eaton` (XUPS-MIB)."""
    pytest.importorskip("snmpsim")
    _require("snmpget")
    work = tmp_path_factory.mktemp("snmpsim")
    switch = write_snmprec(work / "switch.src", switch_records())
    devices = {f"sw{i:03d}": switch for i in range(SIM_DEVICES)}
    devices["ups"] = write_snmprec(work / "ups.src", ups_records())
    devices["sensors"] = write_snmprec(work / "sensors.src", sensor_records())
    for community, walk in (("linux", "linux-full-walk"), ("winxp", "winxp-full-walk"),
                            ("eaton", "eaton-9PX-partial-walk")):
        devices[community] = recorded_walk(walk)
    sim = Snmpsim(work, devices).start()
    yield sim
    sim.stop()

"""kill -9 of the collector under load loses nothing (issue 15, single node): the broker is told
a message arrived only once its batch committed, so what a killed collector held is redelivered
to the next one, and duplicates of what it had committed are dropped by sequence number.
Real Mosquitto (private, persistent session), real collector processes, SQLite."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from fieldwatch.collector.store.db import open_engine

from tests.e2e.procs import wait_for
from tests.faults.harness import Account, Collector, Load, settle, stored_count
from tests.servers import Mosquitto

pytestmark = pytest.mark.e2e


def run(tmp: Path, broker: Mosquitto, kills: int) -> Account:
    tmp.mkdir()
    db = f"sqlite:///{tmp / 'fw.db'}"
    collector = Collector(tmp, broker.port, db).start()
    collector.ready()
    engine = open_engine(db, create=False)
    load = Load(broker.port, devices=40, cycles=60, interval=0.1).start()
    try:
        last = 0
        for _ in range(kills):
            # under load: this collector is storing messages, with more arriving
            wait_for(lambda: stored_count(engine) >= last + 150, 30)  # noqa: B023
            assert collector.stop(signal.SIGKILL) == -signal.SIGKILL
            last = stored_count(engine)
            collector.start().ready()
        load.wait()
        return settle(engine, load)
    finally:
        assert collector.stop(signal.SIGTERM) == 0
        engine.dispose()


def test_three_kills_under_load_lose_no_message_and_no_ticket(tmp_path: Path,
                                                               mosquitto: Mosquitto) -> None:
    killed = run(tmp_path / "killed", mosquitto, kills=3)
    assert killed.missing == [] and killed.duplicated == []
    control = run(tmp_path / "control", mosquitto, kills=0)
    assert control.missing == [] and control.duplicated == []
    assert killed.tickets == control.tickets  # the same tickets as a run without kills
    assert sorted(killed.tickets.values()) == [1] * len(killed.tickets) != []

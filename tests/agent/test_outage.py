"""Store-and-forward through broker outages, agent SIGKILL and a full buffer, end to end:
agent process → real Mosquitto (stopped and restarted on the same port) → collector process."""

from __future__ import annotations

import contextlib
import json
import signal
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fieldwatch.agent.buffer import snapshot
from fieldwatch.collector.store.db import open_engine
from fieldwatch.collector.store.store import Store

from tests.e2e.procs import Proc, start_collector, wait_for, write_rules, write_yaml
from tests.servers import Mosquitto

pytestmark = pytest.mark.e2e

GAP_RULE = """
rules:
  - name: agent_data_lost
    metric: agent.samples_missing
    when: value > 0
    severity: P3
    ticket: {title: "{device} lost {value:.0f} poll cycles"}
"""


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    return write_rules(tmp_path, "gap.yaml", GAP_RULE)


def start_agent(tmp: Path, port: int, textfile: Path, buffer: dict[str, Any] | None = None,
                interval: str = "100ms") -> Proc:
    off = {"enabled": False}
    cfg = write_yaml(tmp / "agent.yaml", {
        "device": "pump-01", "site": "plant", "interval": interval,
        "broker": {"host": "127.0.0.1", "port": port}, "state_dir": str(tmp / "agent-state"),
        "buffer": buffer or {}, "inventory": {"every": "1h"},
        "sources": {**{k: off for k in ("cpu", "load", "memory", "disks", "diskio", "net",
                                        "netlink", "sensors", "battery", "host", "processes",
                                        "smart")},
                    "textfile": {"enabled": True, "dir": str(textfile)}}})
    return Proc(["agent", "run", "--config", str(cfg)], tmp / "agent.log")


def metrics(engine: sa.Engine) -> list[tuple[int, float, float]]:
    """(seq, ts, received_at) of every stored metrics message, in arrival order."""
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(
            "select seq, ts, received_at from messages where kind='metrics' order by id"))]


def agent_last_seq(tmp: Path) -> int:
    return snapshot(tmp / "agent-state" / "buffer").seqs.get(("plant", "pump-01"), 0)


def buffered(tmp: Path) -> int:
    return snapshot(tmp / "agent-state" / "buffer").count


def disk_bytes(directory: Path) -> int:
    """The sizes of the files in the buffer directory at one moment: the agent writes while we
    look, so a look counts only when the next one sees the same files and sizes."""
    def look() -> dict[str, int]:
        sizes = {}
        for p in directory.iterdir():
            with contextlib.suppress(FileNotFoundError):
                sizes[p.name] = p.stat().st_size
        return sizes

    last = look()
    for _ in range(100):
        now = look()
        if now == last:
            return sum(now.values())
        last = now
    raise AssertionError("the buffer directory never held still")


@pytest.fixture
def textfile(tmp_path: Path) -> Path:
    d = tmp_path / "textfile"
    d.mkdir()
    (d / "pump.metrics").write_text("pump.temp_celsius 40\n")
    return d


def _outage(tmp_path: Path, mosquitto: Mosquitto, rules_dir: Path, textfile: Path,
            kill_agent: bool) -> None:
    collector, base = start_collector(tmp_path, mosquitto.port, rules_dir)
    agent = start_agent(tmp_path, mosquitto.port, textfile)
    engine = open_engine(f"sqlite:///{tmp_path / 'fieldwatch.db'}", create=False)
    try:
        wait_for(lambda: len(metrics(engine)) >= 3)
        mosquitto.stop()
        down_at = time.time()
        before = agent_last_seq(tmp_path)
        wait_for(lambda: buffered(tmp_path) >= 6)  # at least 5 poll cycles buffered
        if kill_agent:
            agent.stop(signal.SIGKILL)
            agent = start_agent(tmp_path, mosquitto.port, textfile)
            wait_for(lambda: agent_last_seq(tmp_path) >= before + 10)
        else:
            wait_for(lambda: agent_last_seq(tmp_path) >= before + 8)
        mosquitto.start()
        up_at = time.time()
        # the backlog drains while new cycles keep coming
        wait_for(lambda: agent_last_seq(tmp_path) >= before + 15 and buffered(tmp_path) < 3, 30)
        assert agent.stop() == 0
        last = agent_last_seq(tmp_path)
        wait_for(lambda: [m[0] for m in metrics(engine)][-1:] == [last], 20)
        got = metrics(engine)
        devices = Store(engine).list_devices()
    finally:
        agent.stop()
        collector.stop()
        engine.dispose()
    seqs = [m[0] for m in got]
    assert seqs == list(range(1, last + 1))  # every number once, in order
    # messages made during the outage kept their own timestamps, not their arrival time
    during = [m for m in got if down_at < m[1] < up_at]
    assert len(during) >= 5
    assert all(received >= up_at for _, _, received in during)
    assert all(b[1] > a[1] for a, b in zip(got, got[1:], strict=False))
    assert devices[0]["seq_missing"] == 0
    assert devices[0]["inventory"]["os"] == "Linux"  # stored in the device record


def test_broker_outage_loses_nothing_and_keeps_order_and_timestamps(
        tmp_path: Path, mosquitto: Mosquitto, rules_dir: Path, textfile: Path) -> None:
    _outage(tmp_path, mosquitto, rules_dir, textfile, kill_agent=False)


def test_agent_sigkilled_during_the_outage_loses_nothing(
        tmp_path: Path, mosquitto: Mosquitto, rules_dir: Path, textfile: Path) -> None:
    _outage(tmp_path, mosquitto, rules_dir, textfile, kill_agent=True)


def test_tiny_bound_drops_the_oldest_reports_it_and_never_grows_past_it(
        tmp_path: Path, mosquitto: Mosquitto, rules_dir: Path, textfile: Path) -> None:
    # ~6 KB per message: a 64 KiB bound holds only a handful
    (textfile / "pump.metrics").write_text("".join(
        f'pump.vibration{{axis="{i}"}} {i}.5\n' for i in range(150)))
    bound = 64 * 1024
    collector, base = start_collector(tmp_path, mosquitto.port, rules_dir)
    agent = start_agent(tmp_path, mosquitto.port, textfile, buffer={"max_bytes": bound})
    engine = open_engine(f"sqlite:///{tmp_path / 'fieldwatch.db'}", create=False)
    state = tmp_path / "agent-state"
    biggest = 0
    try:
        wait_for(lambda: len(metrics(engine)) >= 3)
        mosquitto.stop()
        before = agent_last_seq(tmp_path)
        deadline = time.monotonic() + 30
        while agent_last_seq(tmp_path) < before + 40 and time.monotonic() < deadline:
            biggest = max(biggest, disk_bytes(state / "buffer"))
            time.sleep(0.02)
        assert agent_last_seq(tmp_path) >= before + 40, "the agent stopped polling"
        mosquitto.start()
        wait_for(lambda: _event(engine) is not None, 20)
        last = agent_last_seq(tmp_path)
        wait_for(lambda: max(m[0] for m in metrics(engine)) >= last, 20)
        got = [m[0] for m in metrics(engine)]
        event = _event(engine)
        device = Store(engine).list_devices()[0]
        tickets = Store(engine).list_tickets()
    finally:
        agent.stop()
        collector.stop()
        engine.dispose()
    assert biggest <= bound, f"the buffer files reached {biggest} bytes"
    lost = sorted(set(range(1, last + 1)) - set(got))
    assert lost, "the bound never dropped anything"
    assert lost == list(range(lost[0], lost[-1] + 1))  # one block: the oldest of the outage
    assert got == sorted(got) and len(got) == len(set(got))
    assert event["type"] == "agent.buffer_dropped" and event["fields"]["reason"] == "size"
    assert event["fields"]["count"] == len(lost)
    assert device["seq_missing"] == len(lost)
    assert [t["rule"] for t in tickets] == ["agent_data_lost"]  # a rule saw the gap


def _event(engine: sa.Engine) -> dict[str, Any] | None:
    with engine.connect() as conn:
        row = conn.execute(sa.text("select payload from messages where kind='event'")).first()
    return None if row is None else json.loads(row[0])

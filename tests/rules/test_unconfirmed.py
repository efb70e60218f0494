"""Unconfirmed devices (issue 12.14): a device known only from a status message (a retained
`offline` someone else left on the broker) opens no tickets until it sends metrics or
inventory to this collector."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fieldwatch.collector.rules.engine import EngineState, Transition
from fieldwatch.collector.store.db import open_engine
from fieldwatch.collector.store.store import BatchWrite, DeviceSeen, Store
from fieldwatch.collector.tickets.alerts import plan

from fieldwatch import wire
from fieldwatch.cli import main
from fieldwatch.jsonout import device_confirmed, device_json
from tests.rules.helpers import engine, metrics

RULES = """
rules:
  - name: offline
    kind: offline
    for: 1m
    no_data_for: 5m
    severity: P1
    ticket: {title: "{device} is offline"}
  - name: silent
    kind: absent
    for: 10m
    severity: P2
    ticket: {title: "{device} silent"}
  - name: link_down
    event: snmp.trap.linkDown
    severity: P2
    ticket: {title: "link down on {device}"}
"""


def status(device: str, state: str, ts: float | None = None) -> wire.Status:
    return wire.Status(device=device, site="s", state=state,  # type: ignore[arg-type]
                       cause="lost" if state == "offline" else "connected", ts=ts)


def run_ticks(eng, st: EngineState, start: float, end: float) -> list[Transition]:
    out: list[Transition] = []
    for t in range(int(start), int(end), 30):
        out += eng.tick(st, float(t), connected=True)
    return out


def test_a_device_known_only_from_a_retained_status_opens_no_ticket() -> None:
    eng, st = engine(RULES), EngineState()
    out = eng.evaluate(st, [status("ghost", "offline")], received_at=0.0)
    out += eng.evaluate(st, [status("ghost2", "online", 0.0)], received_at=0.0)
    out += run_ticks(eng, st, 0, 7200)
    assert out == [] and st.alerts == {}
    assert not st.devices[("s", "ghost")].confirmed


def test_metrics_confirm_a_device_and_then_its_outage_is_a_ticket() -> None:
    eng, st = engine(RULES), EngineState()
    eng.evaluate(st, [status("d1", "offline")], received_at=0.0)
    assert run_ticks(eng, st, 0, 600) == []
    eng.evaluate(st, [metrics("cpu", 1, 600.0)])  # newer data: online again, and confirmed
    assert st.devices[("s", "d1")].confirmed
    out = eng.evaluate(st, [status("d1", "offline")], received_at=700.0)
    out += run_ticks(eng, st, 700, 800)
    assert [(c.rule, c.kind) for c in plan(out) if c.kind != "repeat"] == [("offline", "fire")]


def test_an_inventory_confirms_a_device() -> None:
    eng, st = engine(RULES), EngineState()
    eng.evaluate(st, [wire.Inventory(device="d1", site="s", ts=0.0, facts={"os": "Linux"})])
    out = eng.evaluate(st, [status("d1", "offline")], received_at=10.0)
    out += run_ticks(eng, st, 10, 200)
    assert [t.rule.name for t in out if t.kind == "firing"] == ["offline"]


def test_an_event_opens_its_own_ticket_but_does_not_confirm_presence() -> None:
    eng, st = engine(RULES), EngineState()
    out = eng.evaluate(st, [wire.Event(device="snmp-10-0-0-7", site="s",
                                       type="snmp.trap.linkDown", ts=0.0)])
    out += run_ticks(eng, st, 0, 7200)  # a trap-only device is never "silent"
    assert [(t.rule.name, t.kind) for t in out] == [("link_down", "firing")]
    assert not st.devices[("s", "snmp-10-0-0-7")].confirmed


def test_seeded_unconfirmed_device_is_quiet_and_its_phantom_ticket_resolves() -> None:
    eng, st = engine(RULES), EngineState()
    eng.seed_device(st, "s", "ghost", 1000.0, "offline", "lost", 500.0, confirmed=False)
    eng.seed_device(st, "s", "real", 1000.0, "offline", "lost", 500.0, confirmed=True)
    # the phantom ticket opened before this fix comes back firing from the store...
    assert eng.restore(st, "offline", "s", "ghost", {}, 600.0, 900.0, 400.0)
    out = run_ticks(eng, st, 1000, 1500)
    # ...and is resolved, saying why; the real device's outage opens its ticket
    assert [(t.device, t.kind) for t in out if t.kind != "update"] == [
        ("ghost", "resolved"), ("real", "firing")]
    assert "unconfirmed" in out[0].resolution


@pytest.mark.parametrize(("row", "confirmed"), [
    ({"last_seq": None, "inventory": None}, False),
    ({"last_seq": 7, "inventory": None}, True),
    ({"last_seq": None, "inventory": {"os": "Linux"}}, True),
])
def test_device_json_says_whether_confirmed(row: dict, confirmed: bool) -> None:
    assert device_confirmed(row) is confirmed
    assert device_json({"site": "s", "device": "d", "status": "offline", **row})[
        "confirmed"] is confirmed


def test_devices_list_shows_unconfirmed(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                        ) -> None:
    db = f"sqlite:///{tmp_path / 'fw.db'}"
    store = Store(open_engine(db))
    try:
        ghost = DeviceSeen("s", "ghost", 1.0, 1.0, 1, status="offline", status_cause="lost",
                           status_at=1.0)
        real = DeviceSeen("s", "real", 1.0, 2.0, 2, last_seq=2, status="offline",
                          status_cause="lost", status_at=2.0)
        store.write(BatchWrite(devices={("s", "ghost"): ghost, ("s", "real"): real}), 3.0)
    finally:
        store.engine.dispose()
    assert main(["devices", "list", "--db", db, "--json"]) == 0
    rows = {r["device"]: r for r in json.loads(capsys.readouterr().out)}
    assert (rows["ghost"]["confirmed"], rows["real"]["confirmed"]) == (False, True)
    assert rows["ghost"]["status"] == "offline"  # what the broker said, kept as it was
    assert main(["devices", "list", "--db", db]) == 0
    lines = {ln.split()[1]: ln.split()[2] for ln in capsys.readouterr().out.splitlines()[1:]}
    assert lines == {"ghost": "unconfirmed", "real": "offline"}

"""Reachability events and sequence numbers, without the network (results fed by hand)."""

from __future__ import annotations

from fieldwatch.agent.snmp.config import SnmpConfig
from fieldwatch.agent.snmp.poller import PollResult, SnmpPoller

from fieldwatch import wire
from fieldwatch.clock import FakeClock
from fieldwatch.structs import convert
from tests.snmp.helpers import Published


def test_events_only_on_reachability_changes_and_seq_rises() -> None:
    out = Published()
    clock = FakeClock(1_800_000_000.0)
    cfg = convert(SnmpConfig, {"targets": [{"device": "sw", "host": "10.0.0.1",
                                                  "site": "branch"}]})
    poller = SnmpPoller(cfg, "hq", out, clock)
    [st] = poller.targets
    assert (st.site, st.interval, st.timeout, st.retries) == ("branch", 60.0, 2.0, 1)
    up = PollResult("sw", "branch", 1.0, [wire.Sample(name="snmp.up", value=1.0)])
    down = PollResult("sw", "branch", 2.0, [wire.Sample(name="snmp.up", value=0.0)],
                      error="no response")
    for r in (up, up, down, down, up, down):
        poller._emit(st, r)
    assert [e.type for e in out.events()] == ["snmp.unreachable", "snmp.reachable",
                                              "snmp.unreachable"]
    assert out.events()[0].fields == {"host": "10.0.0.1", "port": 161, "error": "no response"}
    seqs = [m.seq for _, _, k, m in out if k == "metrics"]  # type: ignore[union-attr]
    assert seqs == list(range(1_800_000_000_001, 1_800_000_000_007))
    assert (st.polls, st.failures, st.up) == (6, 3, False)


def test_first_poll_down_reports_at_once() -> None:
    out = Published()
    poller = SnmpPoller(convert(SnmpConfig, {"targets": [{"device": "x", "host": "h"}]}),
                        "hq", out, FakeClock())
    poller._emit(poller.targets[0], PollResult("x", "hq", 1.0, [], error="boom"))
    assert [(e.device, e.site, e.type) for e in out.events()] == [("x", "hq",
                                                                   "snmp.unreachable")]

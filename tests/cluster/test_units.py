"""The pure parts of cluster mode, without a broker: topic ↔ routing key, the topology, the
partition share, and the hand-over on a real SQLite store."""

from __future__ import annotations

from pathlib import Path

import pytest
from fieldwatch.collector.cluster.handover import Handover, lapsed, new_devices, split_stale
from fieldwatch.collector.cluster.topology import (
    PARTITION_EXCHANGE,
    REROUTE_QUEUE,
    partition_key,
    routing_key,
    topic_for,
    topic_of,
    topology,
)
from fieldwatch.collector.ingest.amqp import excess, share
from fieldwatch.collector.ingest.decode import Received
from fieldwatch.collector.ingest.sequence import SeqState
from fieldwatch.collector.rules.engine import Engine, EngineState
from fieldwatch.collector.rules.loader import load_rules
from hypothesis import given
from hypothesis import strategies as st

from fieldwatch import wire
from fieldwatch.clock import FakeClock

LEVEL = st.text(alphabet=st.characters(categories=["L", "N"], include_characters="-_."),
                min_size=1, max_size=12)


@given(LEVEL, LEVEL, st.sampled_from(["metrics", "status", "events", "inventory", "diag/res"]))
def test_routing_key_back_to_the_topic(site: str, device: str, kind: str) -> None:
    """rabbitmq_mqtt 3.10 turns each '/' into '.', and leaves a '.' inside an id: then only
    the payload's site and device say which topic it was, and must give that very key."""
    topic = wire.topic(site, device, kind)
    key = routing_key(topic)
    assert key == topic.replace("/", ".")
    if "." not in site + device:
        assert topic_of(key) == topic
    else:
        assert topic_of(key) is None
    assert topic_for(key, site, device) == topic
    assert topic_for(key, site + "x", device) is None


@given(LEVEL, LEVEL)
def test_every_kind_of_a_device_hashes_by_one_key(site: str, device: str) -> None:
    key = partition_key(site, device)
    assert key == routing_key(wire.topic(site, device, "metrics"))


def test_topology_partitions_metrics_and_reroutes_the_other_kinds() -> None:
    topo = topology(4)
    names = [q.name for q in topo.queues]
    assert names[:4] == ["fieldwatch.p000", "fieldwatch.p001", "fieldwatch.p002",
                         "fieldwatch.p003"]
    assert all(q.arguments["x-queue-type"] == "quorum" for q in topo.queues)
    assert all(q.arguments.get("x-single-active-consumer") for q in topo.queues[:5])
    to_parts = [b for b in topo.bindings if b.source == PARTITION_EXCHANGE]
    assert [(b.destination, b.key) for b in to_parts] == [(n, "1") for n in names[:4]]
    [metrics] = [b for b in topo.bindings if b.to_exchange]
    assert metrics.key == "fieldwatch.v1.#.metrics"  # '#': ids with dots are several words
    assert sorted(b.key for b in topo.bindings if b.destination == REROUTE_QUEUE) == [
        "fieldwatch.v1.#.events", "fieldwatch.v1.#.inventory", "fieldwatch.v1.#.status"]


@pytest.mark.parametrize(("partitions", "collectors", "held", "give"), [
    (8, 1, 8, 0), (8, 2, 8, 4), (8, 3, 8, 5), (8, 3, 3, 0), (8, 3, 4, 1), (8, 0, 8, 0),
    (8, 9, 2, 1), (8, 2, 4, 0)])
def test_excess_partitions_beyond_the_share(partitions: int, collectors: int, held: int,
                                            give: int) -> None:
    active = [f"p{i}" for i in range(held)]
    out = excess(active, partitions, collectors)
    assert len(out) == give
    assert len(active) - len(out) <= share(partitions, collectors)


class Ack:
    def __init__(self, partition: str, token: int) -> None:
        self.partition, self.token = partition, token

    def __call__(self) -> None:
        pass


def item(device: str, seq: int, partition: str = "p0", token: int = 1,
         value: float = 40.0) -> Received:
    msg = wire.Metrics(device=device, site="s", seq=seq, ts=1000.0 + seq,
                       samples=[wire.Sample("pump.temp_celsius", value)])
    return Received(msg, wire.encode(msg), 1000.0 + seq, Ack(partition, token))


def test_stale_items_are_those_of_a_closed_channel() -> None:
    items = [item("a", 1, "p0", 1), item("b", 1, "p1", 2), item("c", 1, "p2", 3)]
    keep, stale = split_stale(items, {"p0": 1, "p1": 5})
    assert [i.message.device for i in keep] == ["a"]
    assert stale == 2
    plain = Received(items[0].message, b"", 0.0, None)  # MQTT: no partitions, always kept
    assert split_stale([plain], {}) == ([plain], 0)


def test_new_and_lapsed_devices() -> None:
    owned = {("s", "a"): ("p0", 1)}
    fresh = new_devices([item("a", 2), item("b", 1, "p1", 4), item("b", 2, "p1", 4)], owned)
    assert fresh == {("s", "b"): ("p1", 4)}
    assert lapsed({**owned, **fresh}, {"p0": 1, "p1": 7}) == [("s", "b")]


RULE = """
rules:
  - name: pump_hot
    metric: pump.temp_celsius
    when: value > 80
    clear: value < 70
    severity: P1
    ticket: {title: "Pump {device} hot"}
"""


@pytest.fixture
def store(tmp_path: Path):  # type: ignore[no-untyped-def]
    from fieldwatch.collector.store.db import open_engine
    from fieldwatch.collector.store.store import Store

    s = Store(open_engine(f"sqlite:///{tmp_path / 'fw.db'}"))
    yield s
    s.engine.dispose()


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    d = tmp_path / "rules"
    d.mkdir()
    (d / "pump.yaml").write_text(RULE)
    return Engine(load_rules([d]))


def test_takeover_restores_sequences_and_firing_alerts_from_the_store(store, engine) -> None:  # type: ignore[no-untyped-def]
    """Collector A stored seq 1-2 (2 hot: a ticket opened) and died before acking; B takes
    the device over: the redelivered 1-2 are duplicates, and 3 (normal) resolves A's ticket."""
    from fieldwatch.collector.pipeline import prepare

    clock = FakeClock(1010.0)
    a_state, a_seqs = EngineState(), {}
    store.write(prepare([item("d", 1), item("d", 2, value=95.0)], engine, a_state, a_seqs),
                1002.0)
    [ticket] = store.list_tickets("open")

    b_state, b_seqs = EngineState(), {("s", "x"): SeqState(last=99)}
    tokens = {"p0": 1}
    h = Handover(store, b_state, b_seqs, lambda: engine, lambda: tokens, clock)
    assert b_seqs == {}  # nothing known before a device is taken over
    redelivered = [item("d", 1), item("d", 2, value=95.0), item("d", 3)]
    kept = h.admit(redelivered)
    assert kept == redelivered and ("s", "d") in h.owned
    assert b_seqs[("s", "d")].last == 2
    assert b_state.alerts  # the open ticket's alert is firing again
    batch = prepare(kept, engine, b_state, b_seqs)
    assert [r.seq for r in batch.raw] == [3]  # 1 and 2 were stored by A
    store.write(batch, 1003.0)
    assert store.list_tickets("open") == []
    assert store.list_tickets()[0]["id"] == ticket["id"]  # resolved, no second ticket

    tokens["p0"] = 2  # the partition's channel closed: given away
    assert h.admit([item("d", 4)]) == []
    assert h.owned == {} and b_state.devices == {} and b_state.alerts == {}


def test_a_batch_is_fenced_once_another_collector_stored_its_device(store, engine) -> None:  # type: ignore[no-untyped-def]
    """Two collectors believe the device's last stored seq is 2 (a partition moved while one
    was committing): the first to store seq 3 wins, the other's batch is refused whole."""
    from fieldwatch.collector.pipeline import prepare
    from fieldwatch.collector.store.store import Fenced

    store.write(prepare([item("d", 1), item("d", 2)], engine, EngineState(), {}), 1002.0)
    a = prepare([item("d", 3)], engine, EngineState(), {("s", "d"): SeqState(last=2)})
    b = prepare([item("d", 3), item("e", 1)], engine, EngineState(),
                {("s", "d"): SeqState(last=2)})
    a.fence = {("s", "d"): 2}
    b.fence = {("s", "d"): 2, ("s", "e"): None}
    store.write(a, 1003.0)
    with pytest.raises(Fenced) as exc:
        store.write(b, 1003.0)
    assert exc.value.devices == [("s", "d")]
    assert {k: s.last for k, s in store.sequence_states().items()} == {("s", "d"): 3}  # no e

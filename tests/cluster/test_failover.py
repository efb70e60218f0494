"""Cluster mode end to end (issue 15): a private 3-node RabbitMQ cluster, collectors as
processes (`fieldwatch collector run --transport amqp`) on one PostgreSQL store, and the fault
harness's load publishing real wire-format messages over MQTT to the rabbitmq_mqtt plugin.

Each faulty device reports one reading over the rule's threshold, so it must end with exactly
one ticket; every (device, seq) must be stored exactly once — counted from the store."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cluster.procs import (
    ClusterCollector,
    NodeHoppingLoad,
    balanced,
    holders,
    setup_topology,
)
from tests.cluster.rabbit import RabbitCluster
from tests.e2e.procs import wait_for
from tests.faults.harness import settle

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def store_engine(pg_url: str):  # type: ignore[no-untyped-def]
    from fieldwatch.collector.store.db import open_engine

    engine = open_engine(pg_url)
    yield engine
    engine.dispose()


def start_collectors(tmp: Path, rabbit: RabbitCluster, db: str, n: int
                     ) -> list[ClusterCollector]:
    # one after the other: the first creates the store's tables (a race between several
    # collectors creating them on an empty database fails)
    return [ClusterCollector(tmp, rabbit, db, f"c{i}", first_node=i % len(rabbit.nodes)
                             ).ready() for i in range(n)]


def test_kill_9_collector_under_load(tmp_path: Path, rabbit: RabbitCluster, pg_url: str,
                                     store_engine) -> None:  # type: ignore[no-untyped-def]
    setup_topology(tmp_path, rabbit)
    cs = start_collectors(tmp_path, rabbit, pg_url, 3)
    load = NodeHoppingLoad(rabbit, devices=60, cycles=80, interval=0.1).start()
    try:
        # under load, once the partitions are shared out: kill one that holds some
        wait_for(lambda: balanced(cs), 30)
        held = holders(cs)
        victim = next(c for c in cs if c.name in held.values())
        lost = sorted(p for p, name in held.items() if name == victim.name)
        killed_at = victim.kill()
        survivors = [c for c in cs if c is not victim]
        # its partitions are consumed again by the others
        wait_for(lambda: set(lost) <= {p for c in survivors for p in c.partitions_after(
            killed_at)}, 30)
        load.wait(90)
        account = settle(store_engine, load, timeout=60)
    finally:
        for c in cs:
            c.stop()
    assert not account.missing, account.missing[:20]
    assert not account.duplicated, account.duplicated[:20]
    assert account.tickets == {d: 1 for d in load.expected_tickets()}


def test_stop_a_rabbitmq_node_under_load(tmp_path: Path, rabbit: RabbitCluster, pg_url: str,
                                         store_engine) -> None:  # type: ignore[no-untyped-def]
    """The node the load and a collector are connected to stops cleanly: both reconnect to
    another node and the quorum queues keep what they held (ran last: the node stays down)."""
    setup_topology(tmp_path, rabbit)
    cs = start_collectors(tmp_path, rabbit, pg_url, 2)
    load = NodeHoppingLoad(rabbit, devices=40, cycles=250, interval=0.1).start()
    try:
        wait_for(lambda: balanced(cs), 30)
        rabbit.stop_node(rabbit.nodes[0])
        load.wait(120)
        account = settle(store_engine, load, timeout=60)
    finally:
        for c in cs:
            c.stop()
    assert load.hops >= 1  # it did move to another node
    assert not account.missing, account.missing[:20]
    assert not account.duplicated, account.duplicated[:20]
    assert account.tickets == {d: 1 for d in load.expected_tickets()}

"""The exporter against real VictoriaMetrics and Prometheus: round trip, outage, restart."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from fieldwatch.collector.history.exporter import Exporter, Round
from fieldwatch.collector.history.remote_config import RemoteQueryConfig, RemoteWriteConfig
from fieldwatch.collector.history.remote_query import RemoteHistory
from fieldwatch.collector.store.db import open_engine
from fieldwatch.collector.store.schema import remote_write_cursors
from fieldwatch.collector.store.store import Store
from fieldwatch.collector.telemetry.stats import Stats

from fieldwatch.clock import FakeClock
from tests.remote.data import expected, now_aligned, read_back, store_cycles
from tests.remote.servers import Prometheus, VictoriaMetrics

DEVICES = [("hq", "web-01"), ("hq", "web-02"), ("plant", "pump-01")]


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    s = Store(open_engine(f"sqlite:///{tmp_path / 'fieldwatch.db'}"))
    yield s
    s.engine.dispose()


_made: list[Exporter] = []


@pytest.fixture(autouse=True)
def _close_exporters() -> Iterator[None]:
    yield
    while _made:
        _made.pop().stop()


def exporter(store: Store, url: str, stats: Stats | None = None, **cfg: object) -> Exporter:
    """An exporter run round by round (its client closed after the test)."""
    config = RemoteWriteConfig.model_validate({"name": "tsdb", "url": url, "settle": 0,
                                               "first_delay": 0.05, "max_delay": 0.2, **cfg})
    _made.append(Exporter(config, store.engine, FakeClock(), stats or Stats()))
    return _made[-1]


def drain(exp: Exporter, rounds: int = 200) -> Round:
    """Rounds until nothing is left; the sum of what they did."""
    total = Round()
    for _ in range(rounds):
        r = exp.run_once()
        assert r.retry is None, r.retry
        if r.idle:
            return total
        for f in ("sent_messages", "sent_samples", "rejected_messages", "rejected_samples",
                  "requests"):
            setattr(total, f, getattr(total, f) + getattr(r, f))
    raise AssertionError("exporter never went idle")


def backend(server: VictoriaMetrics | Prometheus) -> RemoteHistory:
    if isinstance(server, VictoriaMetrics):
        server.flush()
    return RemoteHistory(RemoteQueryConfig.model_validate({"url": server.base}))


def cursor(store: Store) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(sa.select(remote_write_cursors.c.last_id)).scalar_one())


def test_round_trip_every_sample_comes_back_as_sent(
        sqlite_store: Store, tsdb: VictoriaMetrics | Prometheus) -> None:
    start = now_aligned()
    msgs = store_cycles(sqlite_store, DEVICES, range(1, 31), start)
    stats = Stats()
    exp = exporter(sqlite_store, tsdb.write_url, stats, max_samples=100)
    done = drain(exp)
    assert (done.sent_messages, done.rejected_messages) == (90, 0)
    assert done.sent_samples == 90 * 6 and done.requests >= 90 * 6 // 100
    assert stats.get("remote_write_samples_total", "tsdb") == 540
    assert cursor(sqlite_store) == exp.cursor == 90
    history = backend(tsdb)
    try:
        got = read_back(history, msgs, start, start + 400)
    finally:
        history.close()
    assert got == expected(msgs)  # agent.* health series and escaped labels included
    assert exp.lag_seconds == 0.0 and exp.pending_messages == 0


def test_outage_then_recovery_loses_nothing(sqlite_store: Store,
                                            victoria: VictoriaMetrics) -> None:
    start = now_aligned()
    first = store_cycles(sqlite_store, DEVICES, range(1, 11), start)
    exp = exporter(sqlite_store, victoria.write_url, max_samples=60)
    drain(exp)
    sent = exp.cursor
    victoria.stop()
    more = store_cycles(sqlite_store, DEVICES, range(11, 21), start)
    for _ in range(3):
        r = exp.run_once()
        assert r.retry is not None and "ConnectError" in r.retry
        assert exp.cursor == sent and exp.failing_since is not None
    assert exp.stats.get("remote_write_retries_total", "tsdb") == 3
    victoria.start()
    drain(exp)
    assert exp.failing_since is None and exp.cursor == 60
    history = backend(victoria)
    try:
        assert read_back(history, first + more, start, start + 400) == expected(first + more)
    finally:
        history.close()


@pytest.mark.parametrize("db", ["sqlite", "postgresql"])
def test_restart_resumes_at_the_cursor_and_a_resend_changes_no_result(
        db: str, tmp_path: Path, request: pytest.FixtureRequest,
        tsdb: VictoriaMetrics | Prometheus) -> None:
    url = f"sqlite:///{tmp_path / 'fw.db'}" if db == "sqlite" else \
        request.getfixturevalue("pg_url")
    store = Store(open_engine(url))
    try:
        start = now_aligned()
        msgs = store_cycles(store, DEVICES, range(1, 21), start)
        first = exporter(store, tsdb.write_url, max_samples=36, max_messages=6)
        for _ in range(3):  # three requests of six messages, then the collector stops
            assert first.run_once().sent_messages == 6
        first.stop()
        assert cursor(store) == 18
        # a crash after the server's 2xx but before the cursor's commit: the next process
        # sends those messages again
        with store.engine.begin() as conn:
            conn.execute(remote_write_cursors.update().values(last_id=12))
        second = exporter(store, tsdb.write_url, max_samples=36, max_messages=6)
        assert second.cursor == 12
        drain(second)
        assert cursor(store) == 60
        history = backend(tsdb)
        try:
            assert read_back(history, msgs, start, start + 400) == expected(msgs)
        finally:
            history.close()
        # the server itself holds each sample once (the backend's reading would hide doubles)
        stored = tsdb.query('{site=~".+"}[1h]', start + 400)
        assert sum(len(s["values"]) for s in stored) == 60 * 6
    finally:
        store.engine.dispose()


def test_prometheus_refusal_sets_aside_only_the_refused_message(
        sqlite_store: Store, prometheus: Prometheus) -> None:
    start = now_aligned()
    msgs = store_cycles(sqlite_store, DEVICES[:1], range(10, 20), start)
    exp = exporter(sqlite_store, prometheus.write_url)
    drain(exp)
    # agent backfill: an older cycle arrives after newer ones went out; Prometheus (no
    # out-of-order window) refuses it with a 400, and the next ones still go through
    late = store_cycles(sqlite_store, DEVICES[:1], range(5, 6), start)
    newer = store_cycles(sqlite_store, DEVICES[:1], range(20, 25), start)
    done = drain(exp)
    assert (done.sent_messages, done.rejected_messages, done.rejected_samples) == (5, 1, 6)
    assert exp.stats.get("remote_write_rejected_samples_total", "tsdb") == 6
    assert exp.cursor == 16
    history = backend(prometheus)
    try:
        assert read_back(history, msgs + late + newer, start, start + 400) == \
            expected(msgs + newer)
    finally:
        history.close()

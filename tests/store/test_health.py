"""/healthz: the pure assessment by table, the worker's observable state, and a real collector
whose store fails turning 503 and back to 200 when it recovers (SQLite and PostgreSQL)."""

from __future__ import annotations

import queue
import time
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt
import pytest
from fieldwatch.collector.config import CollectorConfig
from fieldwatch.collector.service import Collector
from fieldwatch.collector.store.db import open_engine
from fieldwatch.collector.store.health import Limits, Observed, assess
from fieldwatch.collector.store.store import Store
from fieldwatch.collector.telemetry.stats import Stats
from fieldwatch.collector.web.api.app import HttpServer, make_app

from fieldwatch import wire
from fieldwatch.clock import FakeClock
from tests.e2e.procs import wait_for
from tests.servers import Mosquitto
from tests.store.helpers import HOT, T0, metrics, stored, worker

LIMITS = Limits(stalled_after=60, stuck_after=120, lag_degraded=60, queue_degraded=0.8)
OK = Observed(queue_max=1000)


@pytest.mark.parametrize(("observed", "state", "words"), [
    (OK, "ok", []),
    (Observed(queue_depth=10, since_last_take=30, queue_max=1000), "ok", []),
    (Observed(queue_depth=0, since_last_take=3600), "ok", []),  # idle, nothing queued
    (Observed(started=False, worker_alive=False), "degraded", ["starting"]),
    (Observed(worker_alive=False), "failing", ["thread is not running"]),
    (Observed(retrying_for=5, holding=12, store_error="OperationalError: disk I/O error"),
     "degraded", ["failed for 5s", "12 messages", "disk I/O error"]),
    (Observed(retrying_for=120, holding=12), "failing", ["failed for 120s"]),
    (Observed(queue_depth=3, since_last_take=60), "failing", ["stalled", "3 queued"]),
    (Observed(queue_depth=3, since_last_take=59), "ok", []),
    (Observed(oldest_unstored_age=61), "degraded", ["61s old"]),
    (Observed(queue_depth=800, queue_max=1000), "degraded", ["80% full", "800 of 1000"]),
    (Observed(queue_depth=799, queue_max=1000), "ok", []),
    (Observed(queue_depth=10**6, queue_max=0), "ok", []),  # unbounded queue: no fill level
    (Observed(mqtt_connected=False), "degraded", ["MQTT broker"]),
    (Observed(mqtt_connected=False, retrying_for=200, queue_depth=5, since_last_take=200),
     "failing", ["failed for 200s", "stalled", "MQTT broker"]),
])
def test_assess(observed: Observed, state: str, words: list[str]) -> None:
    health = assess(observed, LIMITS)
    assert health.state == state
    assert health.http_status == (503 if state == "failing" else 200)
    text = " | ".join(health.reasons)
    assert all(w in text for w in words), text
    assert bool(health.reasons) == (state != "ok")
    assert health.as_json() == {"status": state, "reasons": list(health.reasons)}


def test_worker_observed_before_start_while_stalled_and_after_stop(tmp_path: Path) -> None:
    store = Store(open_engine(f"sqlite:///{tmp_path / 'fw.db'}"))
    clock = FakeClock(T0)
    source: queue.Queue = queue.Queue(maxsize=10)
    w = worker(store, tmp_path / "rules", clock, source)
    try:
        assert assess(w.snapshot(clock.now())).state == "degraded"  # not started yet
        source.put(metrics("a", 1))
        clock.advance(61)
        seen = w.snapshot(clock.now())
        assert (seen.queue_depth, seen.queue_max, seen.since_last_take) == (1, 10, 61)
        assert "stalled" in " ".join(assess(seen).reasons)
        w.start()
        wait_for(lambda: stored(store) == [("a", 1)], 10)
        assert assess(w.snapshot(clock.now())).state == "ok"
        w.stop(10)
        assert assess(w.snapshot(clock.now())).reasons == (
            "the store worker thread is not running",)
    finally:
        w.stop(1)
        store.engine.dispose()


def test_gauges_are_read_when_exported() -> None:
    stats = Stats()
    depth = [3]
    stats.gauge("queue_depth", lambda: depth[0])
    stats.inc("stored_total", n=2)
    depth[0] = 7
    text = stats.prometheus()
    assert "fieldwatch_collector_stored_total 2.0\n" in text
    assert "# TYPE fieldwatch_collector_queue_depth gauge\nfieldwatch_collector_queue_depth 7.0\n" \
        in text
    assert stats.gauges() == {"queue_depth": 7.0}


def _rename(url: str, old: str, new: str) -> None:
    engine = open_engine(url, create=False)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(f"ALTER TABLE {old} RENAME TO {new}")
    finally:
        engine.dispose()


def test_a_collector_whose_store_fails_turns_503_and_back(
        db_url_any: str, tmp_path: Path, mosquitto: Mosquitto) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "hot.yaml").write_text(HOT)
    cfg = CollectorConfig.model_validate({
        "broker": {"host": "127.0.0.1", "port": mosquitto.port}, "client_id": "fw-health-test",
        "rules": [str(rules)], "db": db_url_any, "batch_wait": "10ms"})
    collector = Collector(cfg)
    collector.health_limits = Limits(stuck_after=1.0)
    collector.worker.writer.first_delay, collector.worker.writer.max_delay = 0.05, 0.2
    server = HttpServer(make_app(collector.desk, collector.stats, collector.health), port=0)
    server.start()
    collector.start()
    pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="fw-health-pub")
    seq = iter(range(1, 100))

    def publish(device: str) -> None:
        msg = wire.Metrics(device=device, site="s", seq=next(seq), ts=time.time(),
                           samples=[wire.Sample("temp", 20.0)])
        pub.publish(wire.topic("s", device, "metrics"), wire.encode(msg), qos=1
                    ).wait_for_publish(5)

    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{server.port}", timeout=10) as http:
            ok = wait_for(lambda: (h := _health(http)) and h[1]["status"] == "ok" and h, 15)
            assert ok[0] == 200 and ok[1]["mqtt_connected"] and ok[1]["reasons"] == []
            assert {"queued", "rules", "rules_error", "silences"} <= set(ok[1])  # kept
            pub.connect("127.0.0.1", mosquitto.port)
            pub.loop_start()
            publish("before")
            wait_for(lambda: collector.stats.get("stored_total") == 1, 10)

            _rename(db_url_any, "messages", "messages_away")
            publish("during")
            code, body = wait_for(lambda: (h := _health(http)) and h[0] == 503 and h, 20)
            assert body["status"] == "failing" and body["store_retrying_s"] >= 1.0
            assert any("the store has failed" in r for r in body["reasons"])
            assert body["store_error"] and body["dead_letter_total"] == 0
            metrics_text = http.get("/metrics").text
            assert "fieldwatch_collector_health_state 2.0" in metrics_text
            assert "fieldwatch_collector_oldest_unstored_age_seconds" in metrics_text

            _rename(db_url_any, "messages_away", "messages")
            code, body = wait_for(lambda: (h := _health(http)) and h[0] == 200 and h, 20)
            assert body["status"] == "ok" and body["store_retrying_s"] is None
            wait_for(lambda: collector.stats.get("stored_total") == 2, 10)
            assert "fieldwatch_collector_health_state 0.0" in http.get("/metrics").text
    finally:
        pub.loop_stop()
        pub.disconnect()
        collector.stop()
        server.stop()


def _health(http: httpx.Client) -> tuple[int, dict] | None:
    try:
        r = http.get("/healthz")
    except httpx.TransportError:
        return None
    return r.status_code, r.json()

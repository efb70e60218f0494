"""A real collector (MQTT in, SQLite) remote-writing to a real Prometheus that also scrapes its
/metrics; then a collector restart: nothing lost, nothing doubled in the query results."""

from __future__ import annotations

import time
from pathlib import Path

import paho.mqtt.client as mqtt
from fieldwatch.collector.config import CollectorConfig
from fieldwatch.collector.history.remote_config import RemoteQueryConfig
from fieldwatch.collector.history.remote_query import RemoteHistory
from fieldwatch.collector.service import Collector
from fieldwatch.collector.web.api.app import HttpServer, make_app

from fieldwatch import wire
from fieldwatch.broker import free_port
from tests.conftest import _require
from tests.remote.data import cycle, expected, read_back
from tests.remote.servers import Prometheus
from tests.servers import Mosquitto

DEVICES = [("hq", "web-01"), ("plant", "pump-01")]


def wait_for(check, timeout: float = 30.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError(f"not met within {timeout}s")


def test_collector_remote_writes_every_sample_across_a_restart_and_is_scraped(
        tmp_path: Path, mosquitto: Mosquitto) -> None:
    _require("prometheus")
    rules = tmp_path / "rules"
    rules.mkdir()
    prom_port = free_port()
    cfg = CollectorConfig.model_validate({
        "broker": {"host": "127.0.0.1", "port": mosquitto.port}, "client_id": "fw-remote",
        "rules": [str(rules)], "db": f"sqlite:///{tmp_path / 'fw.db'}",
        "remote_write": [{"name": "prom", "url": f"http://127.0.0.1:{prom_port}/api/v1/write",
                          "settle": "100ms", "poll": "50ms", "first_delay": "50ms",
                          "max_delay": "200ms"}]})
    collector = Collector(cfg)
    http = HttpServer(make_app(collector.desk, collector.stats, collector.health), port=0)
    prom = Prometheus(tmp_path / "prom", port=prom_port, scrape=f"127.0.0.1:{http.port}")
    prom.start()
    http.start()
    pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="fw-remote-pub")
    pub.connect("127.0.0.1", mosquitto.port)
    pub.loop_start()
    start = float(int(time.time()) - 300)
    sent: list[wire.Metrics] = []
    history = RemoteHistory(RemoteQueryConfig.model_validate({"url": prom.base}))

    def publish(seqs: range) -> None:
        for seq in seqs:
            for site, device in DEVICES:
                msg = cycle(site, device, seq, start + 5 * seq)
                sent.append(msg)
                pub.publish(wire.topic(site, device, "metrics"), wire.encode(msg), qos=1
                            ).wait_for_publish(5)

    def remote_count() -> int:
        res = prom.query('count_over_time({__name__=~"agent_buffer_queued"}[1h])', time.time())
        return sum(int(float(r["value"][1])) for r in res)

    try:
        collector.start()
        # the broker must hold the collector's subscription before anything is published: a
        # probe (a series of its own) goes until one is stored
        probe = wire.Metrics(device="probe", site="hq", seq=1, ts=start,
                             samples=[wire.Sample("probe", 1.0)])
        wait_for(lambda: pub.publish(wire.topic("hq", "probe", "metrics"), wire.encode(probe),
                                     qos=1) and collector.stats.get("stored_total") >= 1)
        publish(range(1, 21))
        wait_for(lambda: remote_count() == 40)
        # the server has them a moment before the exporter's thread counts them (+ the probe)
        wait_for(lambda: collector.stats.get("remote_write_samples_total", "prom") == 40 * 6 + 1)
        # Prometheus scrapes the collector: real exposition, histograms included
        up = wait_for(lambda: prom.query('up{job="fieldwatch"} == 1', time.time()))
        assert up
        wait_for(lambda: prom.query("fieldwatch_collector_batch_seconds_count > 0", time.time()))
        stored = wait_for(lambda: prom.query("fieldwatch_collector_stored_total", time.time()))
        assert float(stored[0]["value"][1]) >= 1
        lag = prom.query('fieldwatch_collector_remote_write_lag_seconds{exporter="prom"}',
                         time.time())
        assert lag and lag[0]["metric"]["exporter"] == "prom"

        collector.stop()
        http.stop()
        publish(range(21, 31))  # queued by Mosquitto for the collector's session meanwhile
        collector = Collector(cfg)
        collector.start()
        publish(range(31, 41))
        wait_for(lambda: remote_count() == 80)
        got = read_back(history, sent, start, start + 400)
        assert got == expected(sent)  # agent.* health series among them
    finally:
        history.close()
        pub.loop_stop()
        pub.disconnect()
        collector.stop()
        http.stop()
        prom.stop()


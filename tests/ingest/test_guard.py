"""The last-resort guard: a callback that raises on paho's thread is counted and logged, and
the collector keeps consuming (real Mosquitto, the collector's own MqttIngest)."""

from __future__ import annotations

import logging
import queue
import time
from collections.abc import Iterator

import pytest
from fieldwatch.collector.ingest import CallbackGuard, MqttIngest, Received
from fieldwatch.collector.ingest.guard import LogEvery
from fieldwatch.collector.telemetry.stats import Stats

from fieldwatch import wire
from fieldwatch.clock import SystemClock
from fieldwatch.config import BrokerConfig
from tests.e2e.procs import wait_for
from tests.servers import Mosquitto

CLIENT_ID = "guard-test-collector"
RES_FILTER = wire.topic("+", "+", "diag/res")


class FailingQueue(queue.Queue[Received]):
    """A real queue whose first `fail` puts raise, as a bug behind on_message would."""

    def __init__(self, fail: int) -> None:
        super().__init__()
        self.fail = fail

    def put(self, item: Received, block: bool = True, timeout: float | None = None) -> None:
        if self.fail:
            self.fail -= 1
            raise RuntimeError("a bug downstream of decoding")
        super().put(item, block, timeout)


def metrics(seq: int) -> tuple[str, bytes]:
    msg = wire.Metrics(device="pump-01", site="plant", seq=seq, ts=time.time(),
                       samples=[wire.Sample("pump.temp_celsius", 20.0)])
    return wire.topic("plant", "pump-01", "metrics"), wire.encode(msg)


class Session:
    """The collector's persistent MQTT session, started and stopped like the daemon does."""

    def __init__(self, broker: Mosquitto) -> None:
        self.cfg = BrokerConfig(port=broker.port)
        self.port = broker.port
        self.stats = Stats()

    def start(self, out: queue.Queue[Received],
              handlers: dict | None = None) -> MqttIngest:  # type: ignore[type-arg]
        ingest = MqttIngest(self.cfg, CLIENT_ID, out, self.stats, SystemClock(), 1 << 20,
                            handlers=handlers)
        ingest.start()
        wait_for(ingest.connected.is_set, 10)
        return ingest


@pytest.fixture
def publish(mosquitto: Mosquitto) -> Iterator:  # type: ignore[type-arg]
    import paho.mqtt.client as mqtt

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="guard-test-pub")
    client.connect("127.0.0.1", mosquitto.port)
    client.loop_start()

    def send(topic: str, payload: bytes) -> None:
        client.publish(topic, payload, qos=1).wait_for_publish(5)

    yield send
    client.loop_stop()
    client.disconnect()


def test_on_message_raising_does_not_stop_consumption(mosquitto: Mosquitto, publish) -> None:  # type: ignore[no-untyped-def]
    session = Session(mosquitto)
    session.start(queue.Queue()).stop()  # the persistent session exists; we are offline
    for seq in (1, 2, 3):
        publish(*metrics(seq))  # queued by the broker, delivered in order on reconnect
    out = FailingQueue(fail=1)
    ingest = session.start(out)
    try:
        got = [wait_for(lambda: out.get(timeout=1), 10).message.seq for _ in range(2)]
        assert got == [2, 3]  # seq 1 raised; the thread lived on
        assert session.stats.get("callback_errors_total", "on_message") == 1
    finally:
        ingest.stop()
    # seq 1 was acknowledged though it failed: the next session does not get it again (a
    # message whose PUBACK was still unsent when the session stopped may come back: QoS 1 is
    # at least once, and the collector drops duplicates by seq)
    out2: queue.Queue[Received] = queue.Queue()
    ingest = session.start(out2)
    try:
        publish(*metrics(4))
        seen: list[int] = []
        while 4 not in seen:
            seen.append(wait_for(lambda: out2.get(timeout=1), 10).message.seq)
        assert 1 not in seen
    finally:
        ingest.stop()


def test_a_topic_handler_raising_does_not_stop_consumption(mosquitto: Mosquitto,
                                                           publish) -> None:  # type: ignore[no-untyped-def]
    calls: list[bytes] = []

    def broken(client: object, userdata: object, message: object) -> None:
        calls.append(message.payload)  # type: ignore[attr-defined]
        raise RecursionError("as msgspec raised on 3,000 nested arrays")

    session = Session(mosquitto)
    out: queue.Queue[Received] = queue.Queue()
    ingest = session.start(out, handlers={RES_FILTER: broken})
    try:
        wait_for(lambda: (publish(wire.topic("plant", "pump-01", "diag/res"), b"{}"), calls)[1],
                 10)  # until the subscription is live
        publish(wire.topic("plant", "pump-01", "diag/res"), b"[]")
        publish(*metrics(1))
        assert wait_for(lambda: out.get(timeout=1), 10).message.seq == 1
        assert session.stats.get("callback_errors_total", RES_FILTER) == len(calls) >= 2
    finally:
        ingest.stop()


def test_guard_counts_every_failure_and_logs_few(caplog: pytest.LogCaptureFixture) -> None:
    stats = Stats()
    guard = CallbackGuard(stats, every=3600)

    def boom(*args: object) -> None:
        raise ValueError("bug")

    wrapped = guard.wrap("on_message", boom)
    assert wrapped.__name__ == "boom"  # paho names the callback in its own log
    with caplog.at_level(logging.ERROR, logger="fieldwatch.collector.ingest.guard"):
        for _ in range(50):
            assert wrapped(None, None, None) is None
    assert stats.get("callback_errors_total", "on_message") == 50
    assert len(caplog.records) == 1 and caplog.records[0].exc_info is not None


def test_log_every_reports_what_it_kept_quiet() -> None:
    t = [0.0]
    every = LogEvery(5.0, monotonic=lambda: t[0])
    assert every.due() == 0
    assert [every.due() for _ in range(3)] == [None, None, None]
    t[0] = 5.0
    assert every.due() == 3
    assert every.due() is None

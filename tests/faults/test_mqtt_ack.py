"""The collector's MQTT side of acknowledge-after-commit (issue 15): a message is redelivered
until its `ack` is called; an ack is never sent on a later connection than the message came
on (the broker reuses packet ids after a reconnect); rejected messages are acked at once;
after `pause` no valid message is queued or acked. Real Mosquitto, the collector's own
MqttIngest."""

from __future__ import annotations

import queue
import time

import paho.mqtt.client as mqtt
import pytest
from fieldwatch.collector.ingest import MqttIngest, Received
from fieldwatch.collector.telemetry.stats import Stats

from fieldwatch import wire
from fieldwatch.clock import SystemClock
from fieldwatch.config import BrokerConfig
from tests.e2e.procs import wait_for
from tests.servers import Mosquitto

CLIENT_ID = "ack-test-collector"


class Session:
    """The collector's persistent session, one MqttIngest per start."""

    def __init__(self, broker: Mosquitto) -> None:
        self.broker, self.stats = broker, Stats()
        self.out: queue.Queue[Received] = queue.Queue()
        self.ingest: MqttIngest | None = None

    def start(self) -> MqttIngest:
        self.out = queue.Queue()
        self.ingest = MqttIngest(BrokerConfig(port=self.broker.port), CLIENT_ID, self.out,
                                 self.stats, SystemClock(), 1 << 20)
        self.ingest.start()
        wait_for(self.ingest.connected.is_set, 10)
        return self.ingest

    def stop(self) -> None:
        assert self.ingest is not None
        self.ingest.stop()

    def take(self, timeout: float = 10.0) -> Received:
        return self.out.get(timeout=timeout)

    def seqs_until(self, last: int) -> list[int]:
        got: list[int] = []
        while last not in got:
            got.append(self.take().message.seq)  # type: ignore[union-attr]
        return got


@pytest.fixture
def publish(mosquitto: Mosquitto):  # type: ignore[no-untyped-def]
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="ack-test-pub")
    client.connect("127.0.0.1", mosquitto.port)
    client.loop_start()

    def send(seq: int | None = None, payload: bytes | None = None) -> None:
        if payload is None:
            payload = wire.encode(wire.Metrics(device="pump-01", site="plant", seq=seq or 0,
                                               ts=time.time(), samples=[]))
        client.publish(wire.topic("plant", "pump-01", "metrics"), payload,
                       qos=1).wait_for_publish(5)

    yield send
    client.loop_stop()
    client.disconnect()


def test_a_message_comes_back_until_it_is_acked(mosquitto: Mosquitto, publish) -> None:  # type: ignore[no-untyped-def]
    s = Session(mosquitto)
    s.start()
    publish(1)
    assert s.take().message.seq == 1  # type: ignore[union-attr]
    s.stop()  # never acked: as a kill -9 before the batch committed
    s.start()
    first = s.take()
    assert first.message.seq == 1  # type: ignore[union-attr]
    assert first.ack is not None
    first.ack()
    time.sleep(0.3)  # the PUBACK goes out on paho's thread
    s.stop()
    s.start()
    publish(2)
    assert s.seqs_until(2) == [2]
    s.stop()


def test_an_ack_from_before_a_reconnect_is_not_sent(mosquitto: Mosquitto, publish) -> None:  # type: ignore[no-untyped-def]
    s = Session(mosquitto)
    ingest = s.start()
    publish(1)
    old = s.take()
    mosquitto.stop()  # the link drops; the broker keeps the session (persistence)
    mosquitto.start()
    wait_for(ingest.connected.is_set, 30)
    again = s.take(30)  # redelivered on the new link, maybe under the same packet id
    assert again.message.seq == 1  # type: ignore[union-attr]
    assert old.ack is not None and again.ack is not None
    old.ack()
    assert s.stats.get("acks_dropped_total") == 1
    again.ack()
    time.sleep(0.3)
    s.stop()
    s.start()
    publish(2)
    assert s.seqs_until(2) == [2]
    s.stop()


def test_rejected_messages_are_acked_at_once(mosquitto: Mosquitto, publish) -> None:  # type: ignore[no-untyped-def]
    s = Session(mosquitto)
    s.start()
    publish(payload=b"{not json")
    publish(1)
    s.take().ack()  # type: ignore[misc]
    time.sleep(0.3)
    s.stop()
    s.start()
    publish(2)
    assert s.seqs_until(2) == [2]
    assert s.stats.get("rejected_total", "malformed") == 1
    s.stop()


def test_after_pause_nothing_is_queued_and_it_all_comes_back(mosquitto: Mosquitto,
                                                            publish) -> None:  # type: ignore[no-untyped-def]
    s = Session(mosquitto)
    ingest = s.start()
    ingest.pause()
    publish(1)
    publish(payload=b"{not json")  # rejected, and acked: rejection is final
    wait_for(lambda: s.stats.get("rejected_total", "malformed") == 1, 10)
    assert s.out.qsize() == 0
    time.sleep(0.3)
    s.stop()
    s.start()
    publish(2)
    assert s.seqs_until(2) == [1, 2]
    assert s.stats.get("rejected_total", "malformed") == 1
    s.stop()

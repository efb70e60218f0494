"""The agent's reconnect backoff (issue 18): capped low and jittered, and it is what paho
really waits. Real paho client, real Mosquitto."""

from __future__ import annotations

import paho.mqtt.client as mqtt
from fieldwatch.agent.backoff import CAP, FIRST, ReconnectBackoff, delay

from fieldwatch.broker import free_port
from tests.e2e.procs import wait_for
from tests.servers import Mosquitto


def test_waits_double_up_to_the_cap_and_jitter_within_half() -> None:
    low = [delay(n, rand=lambda: 0.0) for n in range(10)]
    high = [delay(n, rand=lambda: 1.0) for n in range(10)]
    assert high[:6] == [FIRST * 2**n for n in range(5)] + [CAP]
    assert high[6:] == [CAP] * 4 and low == [h / 2 for h in high]
    assert max(delay(n) for n in range(100)) <= CAP
    assert delay(10**6, rand=lambda: 1.0) == CAP  # no overflow however long the outage


def test_paho_waits_what_the_backoff_says() -> None:
    """Against a port nothing listens on: with paho's own 1 s → 60 s doubling, 10 s hold 4
    attempts; with waits of at most 0.3 s, many more."""
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="backoff-test")
    backoff = ReconnectBackoff(client, first=0.2, cap=0.3)
    client.connect_async("127.0.0.1", free_port())
    client.loop_start()
    try:
        wait_for(lambda: backoff.attempt >= 8, 10)
    finally:
        client.loop_stop()
    assert max(backoff.waits) <= 0.3


def test_a_connection_starts_the_series_again(mosquitto: Mosquitto) -> None:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="backoff-test")
    backoff = ReconnectBackoff(client, first=0.2, cap=0.3)
    client.on_connect = lambda *a: backoff.connected()
    mosquitto.stop()
    client.connect_async("127.0.0.1", mosquitto.port)
    client.loop_start()
    try:
        wait_for(lambda: backoff.attempt >= 3, 10)
        mosquitto.start()
        wait_for(client.is_connected, 10)
        assert backoff.attempt == 0 and backoff.waits[-1] <= 0.2
    finally:
        client.loop_stop()
        client.disconnect()

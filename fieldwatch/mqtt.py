"""The paho-mqtt edge shared by agent and collector: one way to build a configured client.

MQTT 3.1.1 everywhere (the embedded amqtt broker speaks nothing newer, DESIGN §4).
"""

from __future__ import annotations

import socket

import paho.mqtt.client as mqtt

from fieldwatch.config import BrokerConfig


def make_client(client_id: str, broker: BrokerConfig, *, clean_session: bool = True,
                will: tuple[str, bytes] | None = None,
                max_queued: int = 0) -> mqtt.Client:
    """A paho client with credentials, TLS, Last Will and reconnect backoff (1 s → 60 s)."""
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                         clean_session=clean_session, protocol=mqtt.MQTTv311)
    if broker.username:
        pw = broker.password()
        client.username_pw_set(broker.username, pw.get_secret_value() if pw else None)
    if broker.tls is not None:
        import ssl

        client.tls_set(ca_certs=str(broker.tls.ca) if broker.tls.ca else None,
                       certfile=str(broker.tls.cert) if broker.tls.cert else None,
                       keyfile=str(broker.tls.key) if broker.tls.key else None,
                       cert_reqs=ssl.CERT_REQUIRED)
        client.tls_insecure_set(broker.tls.insecure)
    if will is not None:
        client.will_set(will[0], will[1], qos=1, retain=True)
    client.reconnect_delay_set(min_delay=1, max_delay=60)
    client.max_queued_messages_set(max_queued)
    return client


def broker_answers(host: str, port: int, timeout: float = 1.0) -> bool:
    """True when something accepts an MQTT CONNECT on host:port (CONNACK received)."""
    # A bare CONNECT, MQTT 3.1.1, clean session, keepalive 5 s, client id "fw-probe".
    cid = b"fw-probe"
    var = b"\x00\x04MQTT\x04\x02\x00\x05" + len(cid).to_bytes(2, "big") + cid
    packet = b"\x10" + bytes([len(var)]) + var
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.sendall(packet)
            reply = s.recv(4)
            s.sendall(b"\xe0\x00")  # DISCONNECT
    except OSError:
        return False
    return len(reply) >= 2 and reply[0] == 0x20

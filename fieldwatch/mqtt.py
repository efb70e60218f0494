"""The paho-mqtt edge shared by agent and collector: one way to build a configured client.

MQTT 3.1.1 unless asked otherwise: the embedded amqtt broker speaks nothing newer (DESIGN §4).
The agent asks for MQTT 5, because only there does a broker say when it refuses a publish (a
PUBACK reason code ≥ 0x80, e.g. 0x87 when its ACL forbids the topic); under 3.1.1 Mosquitto
acknowledges the refused publish like any other and drops it. Whether a broker speaks 5 is
asked first with a bare CONNECT (`speaks_mqtt5`): amqtt answers it with "unsupported protocol
version", but a CONNECT that carries a Last Will it cannot parse at all and leaves unanswered
until the keepalive runs out. The client then steps down to 3.1.1 (`use_mqtt311`).
"""

from __future__ import annotations

import socket

import paho.mqtt.client as mqtt

from fieldwatch.config import BrokerConfig

UNSUPPORTED_PROTOCOL = 0x84  # CONNACK; paho reports a 3.1.1 broker's "1" as this code too


def make_client(client_id: str, broker: BrokerConfig, *, clean_session: bool = True,
                will: tuple[str, bytes] | None = None, max_queued: int = 0,
                protocol: mqtt.MQTTProtocolVersion = mqtt.MQTTv311) -> mqtt.Client:
    """A paho client with credentials, TLS, Last Will and reconnect backoff (1 s → 60 s).

    `protocol=mqtt.MQTTv5` needs `clean_session=True`: the session then ends with the
    connection (no Session Expiry Interval), as a 3.1.1 clean session does."""
    if protocol == mqtt.MQTTv5 and not clean_session:
        raise ValueError("a persistent session is implemented for MQTT 3.1.1 only")
    # Built as 3.1.1 so that the client can step down to it later (see _set_protocol).
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                         clean_session=clean_session, protocol=mqtt.MQTTv311)
    if protocol != mqtt.MQTTv311:
        _set_protocol(client, protocol)
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


def refuses_mqtt5(client: mqtt.Client, reason: mqtt.ReasonCode) -> bool:
    """True when this CONNACK is a broker saying it does not speak the MQTT 5 we asked for."""
    return client.protocol == mqtt.MQTTv5 and reason.value == UNSUPPORTED_PROTOCOL


def use_mqtt311(client: mqtt.Client) -> None:
    """Speak MQTT 3.1.1 from the next connection attempt on (paho reconnects by itself)."""
    _set_protocol(client, mqtt.MQTTv311)


def _set_protocol(client: mqtt.Client, protocol: mqtt.MQTTProtocolVersion) -> None:
    # paho fixes the protocol in its constructor and has no setter; it switches this same
    # attribute itself when it steps down from 3.1.1 to 3.1 (Client._handle_connack). Read
    # only when a connection starts and packets are built or parsed, so switching between
    # connection attempts is safe. tests/broker/test_protocol.py holds paho to that.
    client._protocol = protocol


def speaks_mqtt5(broker: BrokerConfig, timeout: float = 3.0) -> bool | None:
    """Does the broker answer an MQTT 5 CONNECT in MQTT 5? False for a 3.1.1 CONNACK (return
    code 1), None when no answer came (not reachable, TLS failed, silence, or the connection
    closed, which a broker also does when it is full). The probe carries no credentials: a
    refusal comes in the broker's own protocol all the same."""
    cid = b"fw-probe5"
    var = b"\x00\x04MQTT\x05\x02\x00\x05\x00" + len(cid).to_bytes(2, "big") + cid
    try:
        with socket.create_connection((broker.host, broker.port), timeout=timeout) as raw, \
                _tls(raw, broker) if broker.tls is not None else raw as sock:
            sock.sendall(b"\x10" + bytes([len(var)]) + var)
            reply = b""
            while len(reply) < 4:
                chunk = sock.recv(4 - len(reply))
                if not chunk:
                    break
                reply += chunk
            if len(reply) == 4 and reply[3] == 0:
                sock.sendall(b"\xe0\x00")  # accepted (anonymous broker): DISCONNECT
    except OSError:
        return None
    if len(reply) < 4 or reply[0] != 0x20:
        return None  # closed, or not MQTT
    return reply[1] != 2 or reply[2:4] == b"\x00\x00"  # 3.1.1: two bytes, code 1


def _tls(raw: socket.socket, broker: BrokerConfig) -> socket.socket:
    """The probe's TLS, checked as make_client's paho client checks it."""
    import ssl

    tls = broker.tls
    assert tls is not None
    ctx = ssl.create_default_context(cafile=str(tls.ca) if tls.ca else None)
    if tls.cert:
        ctx.load_cert_chain(str(tls.cert), str(tls.key) if tls.key else None)
    ctx.check_hostname = not tls.insecure
    return ctx.wrap_socket(raw, server_hostname=broker.host)


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

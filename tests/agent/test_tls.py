"""The agent over TLS with a client certificate and a password, against a real Mosquitto that
requires all three; a wrong password is refused, buffered, and never logged."""

from __future__ import annotations

import logging
import shutil
import subprocess
import threading
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from fieldwatch.agent.config import AgentConfig
from fieldwatch.agent.daemon import Agent

from fieldwatch import wire
from fieldwatch.structs import convert
from tests.e2e.procs import wait_for
from tests.servers import Mosquitto, wait_port
from tests.tls import make_pki

pytestmark = pytest.mark.e2e
PASSWORD = "pw-0f3c9a-never-logged"


@pytest.fixture
def tls_broker(tmp_path: Path):  # type: ignore[no-untyped-def]
    if shutil.which("mosquitto_passwd") is None:
        pytest.skip("mosquitto_passwd not installed (it comes with mosquitto)")
    pki = tmp_path / "pki"
    make_pki(pki, "server", "agent")
    pwfile = tmp_path / "passwd"
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(pwfile), "web-01", PASSWORD],
                   check=True, timeout=30, capture_output=True)
    broker = Mosquitto(tmp_path / "mosquitto", extra=(
        f"cafile {pki / 'ca.pem'}\ncertfile {pki / 'server.pem'}\nkeyfile {pki / 'server.key'}\n"
        f"require_certificate true\npassword_file {pwfile}\nallow_anonymous false\n"))
    _start_without_plain_probe(broker)
    yield broker, pki, pwfile
    broker.stop()


def _start_without_plain_probe(broker: Mosquitto) -> None:
    """Mosquitto.start() probes with a plain MQTT CONNECT, which a TLS listener never answers."""
    log = open(broker.dir / "mosquitto.log", "ab")  # noqa: SIM115 - closed below
    try:
        broker.proc = subprocess.Popen([broker.binary, "-c", str(broker.conf)],
                                       stdout=subprocess.DEVNULL, stderr=log)
    finally:
        log.close()
    wait_port(broker.host, broker.port)


def _agent_cfg(tmp_path: Path, port: int, pki: Path, pwfile: Path) -> AgentConfig:
    off = {"enabled": False}
    return convert(AgentConfig, {
        "device": "web-01", "site": "hq", "interval": "200ms", "state_dir": tmp_path / "state",
        "broker": {"host": "127.0.0.1", "port": port, "username": "web-01",
                   "password_file": pwfile,
                   "tls": {"ca": pki / "ca.pem", "cert": pki / "agent.pem",
                           "key": pki / "agent.key"}},
        "diag": off, "inventory": off,
        "sources": {k: off for k in ("cpu", "load", "disks", "diskio", "net", "netlink",
                                     "sensors", "battery", "processes", "smart")}})


def test_agent_publishes_over_tls_with_client_cert_and_password(
        tmp_path: Path, tls_broker, caplog: pytest.LogCaptureFixture) -> None:  # type: ignore
    broker, pki, _ = tls_broker
    pwfile = tmp_path / "agent.pass"
    pwfile.write_text(PASSWORD + "\n")
    got: list[wire.Message] = []
    seen = threading.Event()
    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
    sub.tls_set(ca_certs=str(pki / "ca.pem"), certfile=str(pki / "agent.pem"),
                keyfile=str(pki / "agent.key"))
    sub.username_pw_set("web-01", PASSWORD)
    sub.on_connect = lambda c, *a: c.subscribe(wire.topic("hq", "web-01", "metrics"), 1)
    sub.on_message = lambda c, u, m: (got.append(wire.decode(m.payload)), seen.set())
    sub.connect("127.0.0.1", broker.port)
    sub.loop_start()
    agent = Agent(_agent_cfg(tmp_path, broker.port, pki, pwfile))
    try:
        with caplog.at_level(logging.DEBUG):
            agent.start()
            assert seen.wait(15), "no metrics arrived over TLS"
            wait_for(lambda: agent.outbox.count == 0, 10)
    finally:
        agent.stop()
        sub.loop_stop()
        sub.disconnect()
    assert isinstance(got[0], wire.Metrics) and got[0].seq == 1
    assert PASSWORD not in caplog.text


def test_wrong_password_is_refused_buffered_and_never_logged(
        tmp_path: Path, tls_broker, caplog: pytest.LogCaptureFixture) -> None:  # type: ignore
    broker, pki, _ = tls_broker
    pwfile = tmp_path / "agent.pass"
    pwfile.write_text("wrong-" + PASSWORD + "\n")
    agent = Agent(_agent_cfg(tmp_path, broker.port, pki, pwfile))
    try:
        with caplog.at_level(logging.DEBUG):
            agent.start()
            wait_for(lambda: "refused the connection" in caplog.text, 15)
            wait_for(lambda: agent.outbox.count >= 3, 10)  # kept for when it is fixed
    finally:
        agent.stop()
    assert not agent.publisher.connected.is_set()
    assert PASSWORD not in caplog.text

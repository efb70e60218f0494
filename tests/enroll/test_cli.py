"""The operator's side from a collector.yaml with an `enroll:` section, against the shipped
production Mosquitto config: `devices broker-setup` makes the collector's account,
`devices enroll|enrolled|rotate|retire|enroll-audit` work on the config's database and broker,
and the collector builds its route from the same section."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fieldwatch.collector.config import CollectorConfig
from fieldwatch.collector.enroll.routes import build

from fieldwatch import signing, wire
from fieldwatch.cli import main
from fieldwatch.clock import SystemClock
from fieldwatch.config import load_config
from fieldwatch.errors import EnrollmentRefused, FieldwatchError
from tests.broker.deploy import Broker, Client, stage
from tests.conftest import _require

pytestmark = pytest.mark.e2e
RULES = Path(__file__).resolve().parents[2] / "rules"


@pytest.fixture
def broker(tmp_path: Path):  # type: ignore[no-untyped-def]
    _require("mosquitto_ctrl")
    b = stage(tmp_path / "m", {}, variant="dynsec").start()  # no accounts but the admin
    yield b
    b.stop()


def collector_yaml(tmp: Path, b: Broker) -> Path:
    admin = b.admin_config()
    (tmp / "collector.pass").write_text("collector-secret\n")
    _, pub = signing.generate(tmp / "keys")
    cfg = tmp / "collector.yaml"
    cfg.write_text(f"""\
db: sqlite:///{tmp / 'fieldwatch.db'}
rules: [{RULES}]
batch_wait: 10ms
broker: {{host: 127.0.0.1, port: {b.port}, username: collector,
         password_file: {tmp / 'collector.pass'}, tls: {{ca: {b.ca}}}}}
diag: {{private_key: {tmp / 'keys' / 'diag-collector.key'}}}
enroll:
  admin: {{host: 127.0.0.1, port: {b.port}, username: {admin.username},
          password_file: {admin.password_file}, tls: {{ca: {b.ca}}}}}
  agent_broker: {{host: 127.0.0.1, port: {b.port}, ca: {b.ca}}}
  token_ttl: 1h
""")
    assert pub.exists()
    return cfg


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert main(list(argv)) == 0
    return capsys.readouterr().out


def test_the_operators_path_from_a_collector_config(tmp_path: Path, broker: Broker,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    cfg = collector_yaml(tmp_path, broker)
    (tmp_path / "ops.pass").write_text("ops-secret\n")
    out = run(capsys, "devices", "broker-setup", "--config", str(cfg), "--ops-password-file",
              str(tmp_path / "ops.pass"))
    assert "collector, fieldwatch-ops" in out
    collector = Client(broker, "collector", "collector-secret", "c").connect()
    assert collector.connected.is_set()
    collector.subscribe("fieldwatch/v1/#")
    out = run(capsys, "devices", "enroll", "sw-poller", "--site", "hq", "--targets",
              "core-sw-1", "--config", str(cfg), "--collector", "https://collector:8443")
    token = out.split("--token ")[1].strip()
    assert f"fieldwatch agent enroll --collector https://collector:8443 --token {token}" in out
    # the exchange as the collector's route runs it, built from the same config section
    c = load_config(CollectorConfig, cfg)
    assert c.enroll is not None
    enrollment, _ = build(c.enroll, _engine(c), c.diag.private_key, SystemClock())
    try:
        bundle = enrollment.exchange(token, "192.0.2.7")
    finally:
        enrollment.provisioner.close()
    assert bundle["diag_public_key"] == (tmp_path / "keys" / "diag-collector.pub").read_text()
    assert bundle["broker"]["ca_pem"] == broker.ca.read_text()
    device = Client(broker, bundle["username"], bundle["password"], "d").connect()
    assert not device.publish(wire.topic("hq", "core-sw-1", "metrics")).is_failure
    listed = json.loads(run(capsys, "devices", "enrolled", "--config", str(cfg), "--json"))
    assert [(d["device"], d["usernames"], d["targets"]) for d in listed] == [
        ("sw-poller", ["hq/sw-poller~1"], [["hq", "core-sw-1"]])]
    rotated = json.loads(run(capsys, "devices", "rotate", "sw-poller", "--site", "hq",
                             "--config", str(cfg), "--json"))
    assert rotated[0]["targets"] == ["hq/core-sw-1"]
    out = run(capsys, "devices", "retire", "sw-poller", "--site", "hq", "--config", str(cfg))
    assert "hq/sw-poller~1" in out
    try:
        from tests.e2e.procs import wait_for

        wait_for(lambda: device.disconnects, 10)
    finally:
        device.close()
        collector.close()
    audit = json.loads(run(capsys, "devices", "enroll-audit", "--config", str(cfg), "--json"))
    assert [a["event"] for a in audit][:2] == ["retired", "issued"]


def _engine(c: CollectorConfig):  # type: ignore[no-untyped-def]
    from fieldwatch.collector.store.db import open_engine

    return open_engine(c.db)


def test_retire_without_the_broker_section_says_what_is_missing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "f.db"
    assert main(["devices", "enroll", "x", "--site", "hq", "--db", str(db)]) == 0
    assert main(["devices", "retire", "x", "--site", "hq", "--db", str(db)]) == 2
    assert "enroll:" in capsys.readouterr().err


def test_the_whole_path_with_real_processes(tmp_path: Path, broker: Broker,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    """`collector run` serves the route over HTTPS from its `enroll:` section; the device
    enrolls against it and its `agent run` reaches the collector's store."""
    from tests.e2e.procs import Proc, wait_for

    cfg = collector_yaml(tmp_path, broker)
    run(capsys, "devices", "broker-setup", "--config", str(cfg))
    certs = broker.dir / "certs"
    collector = Proc(["collector", "run", "--config", str(cfg), "--http-port", "0",
                      "--tls-cert", str(certs / "broker.pem"), "--tls-key",
                      str(certs / "broker.key")], tmp_path / "collector.log")
    agent = None
    try:
        base = collector.wait_output(r"HTTP API on (https://\S+)/", 30).group(1)
        token = json.loads(run(capsys, "devices", "enroll", "web-01", "--site", "hq",
                               "--config", str(cfg), "--json"))[0]["token"]
        conf = tmp_path / "device" / "agent.yaml"
        run(capsys, "agent", "enroll", "--collector", base, "--token", token, "--ca",
            str(broker.ca), "--config", str(conf), "--state-dir", str(tmp_path / "state"))
        agent = Proc(["agent", "run", "--config", str(conf)], tmp_path / "agent.log")

        def seen() -> bool:
            rows = json.loads(run(capsys, "devices", "list", "--config", str(cfg), "--json"))
            return any((d["site"], d["device"]) == ("hq", "web-01") for d in rows)

        wait_for(seen, 30)
        # the same token again: refused by the running collector
        from fieldwatch.agent.enroll import fetch

        with pytest.raises(EnrollmentRefused) as exc:
            fetch(base, token, broker.ca)
        assert exc.value.reason == "used"
        # `devices retire` from a shell takes over the shared provisioning account for a
        # moment; the running collector still enrolls the next device afterwards
        assert "hq/web-01~1" in run(capsys, "devices", "retire", "web-01", "--site", "hq",
                                    "--config", str(cfg))
        token2 = json.loads(run(capsys, "devices", "enroll", "web-02", "--site", "hq",
                                "--config", str(cfg), "--json"))[0]["token"]

        def enrolled() -> bool:
            try:
                return fetch(base, token2, broker.ca)["username"] == "hq/web-02~1"
            except EnrollmentRefused:
                raise
            except FieldwatchError as exc:  # 503 while it reconnects: the token stays valid
                assert "503" in str(exc)
                return False

        wait_for(enrolled, 30, every=0.5)
    finally:
        if agent is not None:
            agent.stop()
        collector.stop()


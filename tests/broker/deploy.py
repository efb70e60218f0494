"""The shipped Mosquitto config (config/mosquitto/) staged into a temporary directory and
started for real: its paths point at generated files (a CA and broker certificate, a password
file made with mosquitto_passwd, the shipped ACL plus extra stanzas), its TLS listener at a free
port on 127.0.0.1. Nothing else in it changes: what starts here is what operators install.

Two layouts: "debian" puts it in a conf.d directory behind Debian's stock mosquitto.conf (the
documented install), "standalone" runs it alone with the one line it then needs. Two variants:
"static" (mosquitto-static.conf: password and ACL files) and "dynsec" (mosquitto.conf, the
production one: accounts through the dynamic-security plugin, made here through its API as
`fieldwatch devices broker-setup` and `enroll` make them)."""

from __future__ import annotations

import getpass
import re
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from fieldwatch.collector.enroll.brokers import DynsecProvisioner, service_acls

from fieldwatch.broker import free_port
from fieldwatch.config import BrokerConfig, TlsConfig
from tests.tls import make_pki

SHIPPED = Path(__file__).resolve().parents[2] / "config" / "mosquitto"

# Debian 12's /etc/mosquitto/mosquitto.conf as the package installs it, paths made private.
DEBIAN_MAIN = """\
# Place your local configuration in /etc/mosquitto/conf.d/
#
# A full description of the configuration file is at
# /usr/share/doc/mosquitto/examples/mosquitto.conf.example

pid_file {dir}/mosquitto.pid

persistence true
persistence_location {dir}/persist/

log_dest stderr

include_dir {dir}/conf.d
"""

# Every path in the shipped config, and where it points here.
PATHS = {"password_file": "fieldwatch.passwd", "acl_file": "fieldwatch.acl",
         "cafile": "certs/ca.pem", "certfile": "certs/broker.pem", "keyfile": "certs/broker.key",
         "plugin_opt_config_file": "dynamic-security.json"}
CONFIGS = {"static": "mosquitto-static.conf", "dynsec": "mosquitto.conf"}
ADMIN = ("fieldwatch-provisioner", "admin-pw")  # the dynamic-security admin of `dynsec init`


def substitute(conf: str, tmp: Path, port: int) -> str:
    """The shipped config with its paths in `tmp` and its listener on 127.0.0.1:port. Fails on
    any path or listener it does not know, so a new one cannot slip by untested."""
    out = []
    for line in conf.splitlines():
        words = line.split()
        if words and words[0] in PATHS:  # only the value: whatever follows it stays
            path = tmp / PATHS[words[0]]
            line = re.sub(r"^(\s*\S+\s+)\S+", lambda m, p=path: f"{m[1]}{p}", line)
        elif words[:1] == ["listener"]:
            assert words == ["listener", "8883"], f"a listener this test does not know: {line}"
            line = f"listener {port} 127.0.0.1"
        elif words and not line.lstrip().startswith("#"):
            assert not re.search(r"(^|\s)/", line), f"a path this test does not know: {line}"
        out.append(line)
    return "\n".join(out) + "\n"


@dataclass
class Broker:
    dir: Path
    port: int
    layout: str
    conf: Path
    proc: subprocess.Popen[bytes] | None = None
    variant: str = "static"
    users: dict[str, str] = field(default_factory=dict)
    log: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log = self.dir / "mosquitto.log"

    @property
    def ca(self) -> Path:
        return self.dir / PATHS["cafile"]

    @property
    def acl(self) -> Path:
        return self.dir / PATHS["acl_file"]

    def start(self) -> Broker:
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([binary, "-c", str(self.conf)], cwd=self.dir,
                                         stdout=subprocess.DEVNULL, stderr=log)
        deadline = time.monotonic() + 15
        while not self._handshakes():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"mosquitto did not start: {self.log.read_text()}")
            time.sleep(0.05)
        if self.variant == "dynsec":
            self.setup_accounts()
        return self

    def _handshakes(self) -> bool:
        ctx = ssl.create_default_context(cafile=str(self.ca))
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as raw, \
                    ctx.wrap_socket(raw, server_hostname="127.0.0.1"):
                return True
        except OSError:
            return False

    def admin_config(self) -> BrokerConfig:
        """How the collector reaches the dynamic-security API: the provisioning account over
        the TLS listener (its password in a file, as the collector's config takes it)."""
        pw = self.dir / "admin.pass"
        pw.write_text(ADMIN[1])
        return BrokerConfig(host="127.0.0.1", port=self.port, username=ADMIN[0],
                            password_file=pw, tls=TlsConfig(ca=self.ca))

    def provisioner(self) -> DynsecProvisioner:
        return DynsecProvisioner(self.admin_config())

    def setup_accounts(self) -> None:
        """The service accounts of `users` (collector and operators) through the plugin."""
        kinds = {"collector": "collector", "fieldwatch-ops": "ops"}
        p = self.provisioner()
        try:
            p.setup({u: (pw, service_acls(kinds[u])) for u, pw in self.users.items()
                     if u in kinds})
        finally:
            p.close()

    def reload(self) -> None:
        """SIGHUP: Mosquitto reads its password and ACL files again."""
        assert self.proc is not None
        self.proc.send_signal(1)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def stage(tmp: Path, users: dict[str, str], layout: str = "debian", acl_extra: str = "",
          edit: Callable[[str], str] = lambda conf: conf, variant: str = "static") -> Broker:
    """The shipped config, ACL and a password file for `users`, staged in `tmp` (`edit` may
    change the config text first, for tests that show what a line is for). Under "dynsec",
    `users` may name only the service accounts (collector, fieldwatch-ops), made at start."""
    for tool in ("mosquitto", "mosquitto_passwd", "mosquitto_ctrl"):
        if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists():
            pytest.skip(f"{tool} not installed (apt-get install mosquitto)")
    tmp.mkdir(parents=True, exist_ok=True)
    make_pki(tmp / "certs", "broker")
    if variant == "static":
        passwd = tmp / PATHS["password_file"]
        for i, (user, password) in enumerate(users.items()):
            subprocess.run(["mosquitto_passwd", *(["-c"] if i == 0 else []), "-b", str(passwd),
                            user, password], check=True, timeout=30, capture_output=True)
        (tmp / PATHS["acl_file"]).write_text((SHIPPED / "fieldwatch.acl").read_text()
                                             + acl_extra)
    else:  # the documented first step: `mosquitto_ctrl dynsec init FILE ADMIN`
        subprocess.run(["mosquitto_ctrl", "dynsec", "init", str(tmp / PATHS[
            "plugin_opt_config_file"]), *ADMIN], check=True, timeout=30, capture_output=True)
    port = free_port()
    conf = substitute(edit((SHIPPED / CONFIGS[variant]).read_text()), tmp, port)
    # test-only: run as whoever runs the tests (as root Mosquitto would switch to its own
    # user, which cannot read this private directory), and log what it refuses
    own = f"user {getpass.getuser()}\nlog_type error\nlog_type warning\nlog_type notice\n"
    if layout == "debian":
        (tmp / "conf.d").mkdir()
        (tmp / "persist").mkdir()
        (tmp / "conf.d" / "fieldwatch.conf").write_text(conf)
        main = tmp / "mosquitto.conf"
        main.write_text(DEBIAN_MAIN.format(dir=tmp) + own)
    else:
        main = tmp / "fieldwatch.conf"
        main.write_text(conf + f"persistence_location {tmp}/\nlog_dest stderr\n" + own)
    return Broker(tmp, port, layout, main, variant=variant, users=dict(users))


# -- clients -----------------------------------------------------------------------------------


def release(client: mqtt.Client) -> None:
    """Close the socket pair paho's loop opened. paho closes it only when the client is
    collected, and a client caught in a reference cycle (its callbacks point back at their
    owner) may be collected after its sockets, which then warn as unclosed in a later test."""
    client._reset_sockets()


class Client:
    """A paho client over the staged broker's TLS listener that records what happens."""

    def __init__(self, broker: Broker, user: str | None, password: str | None,
                 client_id: str, protocol: mqtt.MQTTProtocolVersion = mqtt.MQTTv5,
                 clean_session: bool = True) -> None:
        kw = {} if protocol == mqtt.MQTTv5 else {"clean_session": clean_session}
        self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                             protocol=protocol, reconnect_on_failure=False, **kw)
        self.c.tls_set(ca_certs=str(broker.ca))
        if user is not None:
            self.c.username_pw_set(user, password)
        self.connack: mqtt.ReasonCode | None = None
        self.connected = threading.Event()
        self.answered = threading.Event()
        self.disconnects: list[str] = []
        self.pubacks: dict[int, mqtt.ReasonCode] = {}
        self.got: list[tuple[str, bytes]] = []
        self._lock = threading.Lock()
        self.c.on_connect = self._on_connect
        self.c.on_disconnect = lambda c, u, f, rc, p: self.disconnects.append(str(rc))
        self.c.on_publish = self._on_publish
        self.c.on_message = lambda c, u, m: self.got.append((m.topic, bytes(m.payload)))
        self.broker = broker

    def _on_connect(self, c: mqtt.Client, u: object, f: object, rc: mqtt.ReasonCode,
                    p: object) -> None:
        self.connack = rc
        if not rc.is_failure:
            self.connected.set()
        self.answered.set()

    def _on_publish(self, c: mqtt.Client, u: object, mid: int, rc: mqtt.ReasonCode,
                    p: object) -> None:
        with self._lock:
            self.pubacks[mid] = rc

    def connect(self, timeout: float = 10) -> Client:
        self.c.connect("127.0.0.1", self.broker.port, keepalive=30)
        self.c.loop_start()
        assert self.answered.wait(timeout), "no CONNACK"
        return self

    def subscribe(self, topic: str) -> None:
        done = threading.Event()
        self.c.on_subscribe = lambda *a: done.set()
        self.c.subscribe(topic, qos=1)
        assert done.wait(10), "no SUBACK"

    def publish(self, topic: str, payload: bytes = b"x") -> mqtt.ReasonCode:
        """Publish at QoS 1 and return the PUBACK's reason code."""
        info = self.c.publish(topic, payload, qos=1)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with self._lock:
                if info.mid in self.pubacks:
                    return self.pubacks[info.mid]
            time.sleep(0.01)
        raise AssertionError(f"no PUBACK for {topic}")

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()
        release(self.c)

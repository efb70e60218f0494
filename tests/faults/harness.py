"""Load, a collector process and the loss accounting for the fault tests (and bench/faults.py).

`Load` publishes D devices × C cycles of metrics at QoS 1 from one paho client, each device's
messages numbered 1..C; device d reports one single-sample fault (a reading over the rule's
threshold, then normal again) at a cycle of its own, so each faulty device must end with
exactly one ticket. `Account` reads the store afterwards: which (device, seq) are missing,
which are stored twice, and which devices have how many tickets — the loss is counted from the
stored raw messages, not from any counter of the process that may have been killed.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt
import sqlalchemy as sa

from fieldwatch import wire
from tests.e2e.procs import Proc, wait_for, write_yaml

RULE = """
rules:
  - name: pump_hot
    metric: pump.temp_celsius
    when: value > 80
    clear: value < 70
    severity: P1
    ticket: {title: "Pump {device} hot"}
"""


def rules_dir(tmp: Path) -> Path:
    d = tmp / "rules"
    d.mkdir(exist_ok=True)
    (d / "pump.yaml").write_text(RULE)
    return d


class Load:
    """`devices` × `cycles` metrics messages, a cycle every `interval` seconds, in a thread."""

    def __init__(self, port: int, devices: int = 40, cycles: int = 50,
                 interval: float = 0.1, faulty_every: int = 3, site: str = "plant") -> None:
        self.port, self.devices, self.cycles = port, devices, cycles
        self.interval, self.site = interval, site
        # device d (every `faulty_every`-th) is hot at one cycle of its own
        self.faults = {f"dev-{d}": 1 + (d * 7) % cycles for d in range(devices)
                       if d % faulty_every == 0}
        self.done = threading.Event()
        self.published = 0
        self._thread = threading.Thread(target=self._run, name="fault-load", daemon=True)
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="fault-load")
        self.client.max_inflight_messages_set(1000)

    def start(self) -> Load:
        self.client.connect("127.0.0.1", self.port)
        self.client.loop_start()
        self._thread.start()
        return self

    def _run(self) -> None:
        for info in self._publish_all():
            info.wait_for_publish(30)
        self.done.set()

    def _publish_all(self) -> list[mqtt.MQTTMessageInfo]:
        """Every cycle of every device, `interval` apart; what paho was handed."""
        infos = []
        for c in range(1, self.cycles + 1):
            t = time.monotonic()
            for d in range(self.devices):
                device = f"dev-{d}"
                value = 95.0 if self.faults.get(device) == c else 40.0
                msg = wire.Metrics(device=device, site=self.site, seq=c, ts=time.time(),
                                   samples=[wire.Sample("pump.temp_celsius", value)])
                infos.append(self.client.publish(wire.topic(self.site, device, "metrics"),
                                                 wire.encode(msg), qos=1))
                self.published += 1
            time.sleep(max(0.0, self.interval - (time.monotonic() - t)))
        return infos

    def wait(self, timeout: float = 60.0) -> None:
        assert self.done.wait(timeout), "the load did not finish publishing"
        self.client.loop_stop()
        self.client.disconnect()

    @property
    def expected(self) -> int:
        return self.devices * self.cycles

    def expected_tickets(self) -> list[str]:
        return sorted(self.faults)


@dataclass
class Account:
    missing: list[tuple[str, int]] = field(default_factory=list)
    duplicated: list[tuple[str, int]] = field(default_factory=list)
    tickets: dict[str, int] = field(default_factory=dict)  # device → tickets of pump_hot
    stored: int = 0

    @classmethod
    def of(cls, engine: sa.Engine, load: Load) -> Account:
        with engine.connect() as conn:
            rows = conn.execute(sa.text(
                "select device, seq from messages where kind = 'metrics'")).all()
            tickets = conn.execute(sa.text(
                "select device from tickets where rule = 'pump_hot'")).all()
        seen = Counter((r[0], r[1]) for r in rows)
        want = [(f"dev-{d}", c) for d in range(load.devices) for c in range(1, load.cycles + 1)]
        return cls(missing=[k for k in want if k not in seen],
                   duplicated=sorted(k for k, n in seen.items() if n > 1),
                   tickets=dict(Counter(r[0] for r in tickets)), stored=len(rows))

    def clean(self, load: Load) -> bool:
        return (not self.missing and not self.duplicated
                and self.tickets == {d: 1 for d in load.expected_tickets()})


def stored_count(engine: sa.Engine) -> int:
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text(
                "select count(*) from messages where kind = 'metrics'")).scalar_one())
    except sa.exc.SQLAlchemyError:
        return -1  # the store is down, or its disk full: not yet


def settle(engine: sa.Engine, load: Load, timeout: float = 30.0) -> Account:
    """The account once everything is stored, or once nothing more came for 5 s (then the
    account shows what is missing)."""
    deadline = time.monotonic() + timeout
    last, still = -1, time.monotonic()
    while time.monotonic() < deadline:
        n = stored_count(engine)
        if n >= load.expected:
            break
        if n != last:
            last, still = n, time.monotonic()
        elif n >= 0 and time.monotonic() - still > 5.0:
            break
        time.sleep(0.1)
    time.sleep(0.5)  # the tickets of the last batch
    return Account.of(engine, load)


class Collector:
    """`fieldwatch collector run` as a process, restartable on the same session and store."""

    def __init__(self, tmp: Path, port: int, db: str, stop_timeout: str = "2s") -> None:
        self.tmp, self.runs = tmp, 0
        self.cfg = write_yaml(tmp / "collector.yaml", {
            "broker": {"host": "127.0.0.1", "port": port}, "client_id": "fw-fault-collector",
            "rules": [str(rules_dir(tmp))], "db": db, "batch_wait": "10ms",
            "stop_timeout": stop_timeout})
        self.proc: Proc | None = None

    def start(self) -> Collector:
        self.runs += 1
        self.proc = Proc(["collector", "run", "--config", str(self.cfg), "--http-port", "0"],
                         self.tmp / f"collector-{self.runs}.log")
        return self

    def ready(self, timeout: float = 30.0) -> str:
        """The HTTP API's base URL, once the collector serves (its store reached) and is
        connected to the broker; the first time, a moment more for its subscription to be
        in place (a fresh session gets only what is published after that)."""
        assert self.proc is not None
        base = self.proc.wait_output(r"HTTP API on (http://\S+)/", timeout).group(1)
        wait_for(lambda: httpx.get(f"{base}/healthz").json()["mqtt_connected"], timeout)
        if self.runs == 1:
            time.sleep(0.5)
        return base

    def stop(self, sig: int, timeout: float = 30.0) -> int:
        assert self.proc is not None
        return self.proc.stop(sig, timeout)

    def logs(self) -> str:
        return "".join(p.read_text() for p in sorted(self.tmp.glob("collector-*.log")))

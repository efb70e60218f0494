"""What an enrolled device may do on the broker, worked out from its site, name and declared
SNMP targets. Pure: names in, topics out; each broker provisioner turns this into its own form
(dynamic-security roles, RabbitMQ topic permissions).

A device publishes only under its own topics and those of its targets, and subscribes only to
its own diagnostics requests. Broker usernames carry a generation (`hq/web-01~2`) so that a
rotation can keep the old credential alive beside the new one for an overlap window.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from fieldwatch import wire

# What an agent publishes under its own device (agent/daemon.py, agent/diag) ...
OWN_KINDS = ("metrics", "events", "status", "inventory", "diag/res")
# ... and for an SNMP target: polls, traps and drop reports, and the retained inventory
# saying who polls it (Agent.announce_targets).
TARGET_KINDS = ("metrics", "events", "inventory")
SUBSCRIBE_KINDS = ("diag/req",)

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}")


def check_name(what: str, value: str) -> str:
    """A site or device name usable as one topic level and inside a broker username."""
    if not NAME.fullmatch(value):
        raise ValueError(f"{what} {value!r}: expected 1-64 letters, digits, `_.:-`, starting "
                         "with a letter or digit")
    return value


@dataclass(frozen=True, slots=True)
class Target:
    site: str
    device: str


def parse_targets(text: str | None, site: str) -> tuple[Target, ...]:
    """`core-sw-1,plant/ups-1` → targets (a bare name is at the device's own site)."""
    out: list[Target] = []
    for item in (text or "").split(","):
        item = item.strip()
        if not item:
            continue
        tsite, _, dev = item.rpartition("/")
        out.append(Target(check_name("target site", tsite or site),
                          check_name("target device", dev)))
    return tuple(sorted(set(out), key=lambda t: (t.site, t.device)))


@dataclass(frozen=True, slots=True)
class DeviceAcl:
    site: str
    device: str
    targets: tuple[Target, ...] = ()

    @property
    def key(self) -> str:
        return f"{self.site}/{self.device}"

    @property
    def role(self) -> str:
        """The broker-side role (dynamic security) holding this device's topics."""
        return f"fieldwatch-device:{self.key}"

    def username(self, generation: int) -> str:
        return f"{self.key}~{generation}"

    def publish(self) -> tuple[str, ...]:
        own = [wire.topic(self.site, self.device, k) for k in OWN_KINDS]
        return tuple(own + [wire.topic(t.site, t.device, k) for t in self.targets
                            for k in TARGET_KINDS])

    def subscribe(self) -> tuple[str, ...]:
        return tuple(wire.topic(self.site, self.device, k) for k in SUBSCRIBE_KINDS)

    def as_json(self) -> dict[str, list[str]]:
        return {"publish": list(self.publish()), "subscribe": list(self.subscribe())}

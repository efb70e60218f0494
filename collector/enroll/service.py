"""Enrollment as the CLI and the HTTP route see it: issue a token, trade it for credentials,
rotate, retire. Ties the store (what was issued and to whom) to a broker Provisioner (what the
broker lets in), keeping them in step: a provisioning that fails gives the token back and
forgets the identity, so a device can simply try again.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fieldwatch.collector.enroll.acl import DeviceAcl, check_name, parse_targets
from fieldwatch.collector.enroll.brokers import Provisioner
from fieldwatch.collector.enroll.config import EnrollConfig
from fieldwatch.collector.enroll.store import EnrollStore
from fieldwatch.collector.enroll.tokens import new_password

from fieldwatch.errors import EnrollmentRefused, ProvisioningError

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Endpoint:
    """What an enrolled agent is told about the broker (and the collector's diag key)."""

    host: str
    port: int
    ca_pem: str | None = None  # None: plain MQTT
    diag_public_pem: str | None = None

    @classmethod
    def from_config(cls, cfg: EnrollConfig, diag_private: Path | None) -> Endpoint:
        ab = cfg.agent_broker
        pub = None
        if diag_private is not None:
            from cryptography.hazmat.primitives import serialization

            from fieldwatch import signing

            pub = signing.load_private(diag_private).public_key().public_bytes(
                serialization.Encoding.PEM,
                serialization.PublicFormat.SubjectPublicKeyInfo).decode()
        return cls(ab.host, ab.port, ab.ca.read_text() if ab.ca else None, pub)


class Enrollment:
    def __init__(self, store: EnrollStore, provisioner: Provisioner, endpoint: Endpoint
                 ) -> None:
        self.store, self.provisioner, self.endpoint = store, provisioner, endpoint

    def enroll(self, device: str, site: str, targets: str | None = None,
               ttl: float = 86400.0, by: str = "") -> str:
        """A one-time token for `site/device` (and its SNMP targets)."""
        acl = DeviceAcl(check_name("site", site), check_name("device", device),
                        parse_targets(targets, site))
        if ttl <= 0:
            raise ValueError("ttl: expected a positive duration")
        return self.store.issue(acl, ttl, by=by)

    def rotate(self, device: str, site: str, ttl: float, overlap: float,
               targets: str | None = None, by: str = "") -> str:
        """A token for new credentials; the current ones keep working for `overlap` seconds
        after the new ones are fetched. Targets stay as they are unless given."""
        live = [d for d in self.store.devices()
                if d["site"] == site and d["device"] == device and d["usernames"]]
        if not live:
            raise EnrollmentRefused("not_enrolled", f"{site}/{device} has no live credentials;"
                                    " use `fieldwatch devices enroll`")
        if targets is None:
            targets = ",".join(f"{s}/{d}" for s, d in live[0]["targets"])
        acl = DeviceAcl(site, device, parse_targets(targets, site))
        return self.store.issue(acl, ttl, overlap=overlap, by=by)

    def exchange(self, token: str, address: str) -> dict[str, Any]:
        """Spend the token, create the broker account, return what the agent needs."""
        grant = self.store.spend(token, address)  # EnrollmentRefused, audited
        acl = grant.acl
        username = self.store.add_identity(acl, address)
        password = new_password()
        try:
            self.provisioner.provision(username, password, acl)
        except ProvisioningError as exc:
            self.store.forget_identity(username, str(exc))
            self.store.unspend(grant)
            raise
        # the device's other credentials: at once for an enrollment, after the overlap for a
        # rotation
        self.store.expire_others(acl.site, acl.device, username,
                                 self.store.clock.now() + grant.overlap)
        self.sweep()
        e = self.endpoint
        return {"site": acl.site, "device": acl.device, "username": username,
                "password": password,
                "broker": {"host": e.host, "port": e.port, "tls": e.ca_pem is not None,
                           "ca_pem": e.ca_pem},
                "acl": acl.as_json(),
                "targets": [f"{t.site}/{t.device}" for t in acl.targets],
                "diag_public_key": e.diag_public_pem}

    def retire(self, device: str, site: str) -> list[str]:
        """Remove every credential of the device from the broker now (connections dropped)
        and spend its unused tokens."""
        self.store.cancel_tokens(site, device)
        users = self.store.active(site, device)
        self.provisioner.remove(users)
        self.store.retired(users, "retired")
        return users

    def sweep(self) -> list[str]:
        """Remove rotated-out credentials whose overlap has ended."""
        due = [u for u, _, _ in self.store.due()]
        if due:
            self.provisioner.remove(due)
            self.store.retired(due, "rotated_out", "overlap ended")
        return due


class Sweeper:
    """Removes rotated-out credentials when their overlap ends, even if no device enrolls
    meanwhile: a thread of the collector, checking every `every` seconds, joined at stop."""

    def __init__(self, enrollment: Enrollment, every: float = 60.0) -> None:
        self.enrollment, self.every = enrollment, every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fieldwatch-enroll-sweep",
                                        daemon=True)
        self.failures = 0

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            try:
                gone = self.enrollment.sweep()
            except ProvisioningError as exc:  # the broker is away: next round
                self.failures += 1
                log.warning("could not remove rotated-out credentials yet: %s", exc)
                continue
            if gone:
                log.info("rotated-out credentials removed: %s", ", ".join(gone))

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 15.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

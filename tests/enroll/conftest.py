"""A collector's enrollment service for real: the shipped production Mosquitto config (dynamic
security, TLS) started privately, and the collector's HTTP app over HTTPS with the enrollment
route, on a clock the test moves."""

from __future__ import annotations

import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fieldwatch.collector.enroll.routes import enroll_routes
from fieldwatch.collector.enroll.service import Endpoint, Enrollment
from fieldwatch.collector.enroll.store import EnrollStore
from fieldwatch.collector.store.db import open_engine
from fieldwatch.collector.store.store import Store
from fieldwatch.collector.telemetry.stats import Stats
from fieldwatch.collector.web.accounts.throttle import Throttle
from fieldwatch.collector.web.api.app import HttpServer, make_app

from fieldwatch import signing
from fieldwatch.clock import FakeClock
from tests.broker.deploy import Broker, Client, stage
from tests.conftest import _require

SERVICE = {"collector": "c-pw", "fieldwatch-ops": "ops-pw"}


@dataclass
class Site:
    broker: Broker
    enrollment: Enrollment
    stats: Stats
    clock: FakeClock
    server: HttpServer
    diag_pub: Path

    @property
    def url(self) -> str:
        return self.server.url.rstrip("/")

    @property
    def ca(self) -> Path:
        return self.broker.ca  # the test CA signed the broker's and the collector's certs

    def exchange(self, token: str) -> httpx.Response:
        with httpx.Client(verify=ssl.create_default_context(cafile=str(self.ca))) as h:
            return h.post(self.url + "/api/v1/enroll", json={"token": token})

    def connect(self, user: str, password: str, client_id: str = "") -> Client:
        return Client(self.broker, user, password, client_id or f"c-{user}").connect()


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    for tool in ("mosquitto", "mosquitto_ctrl"):
        _require(tool)
    broker = stage(tmp_path / "mosquitto", SERVICE, variant="dynsec").start()
    engine = open_engine(f"sqlite:///{tmp_path / 'fieldwatch.db'}")
    clock = FakeClock(time.time())
    _, pub = signing.generate(tmp_path / "keys")
    enrollment = Enrollment(EnrollStore(engine, clock), broker.provisioner(),
                            Endpoint("127.0.0.1", broker.port, broker.ca.read_text(),
                                     pub.read_text()))
    stats = Stats()
    app = make_app(Store(engine), stats)
    app.router.routes.extend(enroll_routes(enrollment, stats, Throttle(clock, 20, 600)))
    certs = broker.dir / "certs"
    server = HttpServer(app, port=0, tls_cert=str(certs / "broker.pem"),
                        tls_key=str(certs / "broker.key"))
    server.start()
    try:
        yield Site(broker, enrollment, stats, clock, server, pub)
    finally:
        server.stop()
        enrollment.provisioner.close()
        broker.stop()
        engine.dispose()

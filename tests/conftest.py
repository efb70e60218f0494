"""Shared fixtures: real servers (Mosquitto, PostgreSQL) and an injected clock."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from fieldwatch.clock import FakeClock
from tests.servers import Mosquitto

PG_URL = os.environ.get("FIELDWATCH_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _require(binary: str) -> None:
    if shutil.which(binary) is None and not Path(f"/usr/sbin/{binary}").exists():
        if os.environ.get("CI"):
            pytest.fail(f"{binary} is not installed; .ci/run must install it")
        pytest.skip(f"{binary} not installed (apt-get install {binary}); CI runs this test")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    """A private Mosquitto broker on a free 127.0.0.1 port, stopped after the test."""
    _require("mosquitto")
    broker = Mosquitto(tmp_path / "mosquitto").start()
    yield broker
    broker.stop()


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database on 127.0.0.1:5432, dropped after the test."""
    sa = pytest.importorskip("sqlalchemy")
    admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    name = f"fw_test_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is not reachable at {PG_URL}: {exc}")
        pytest.skip(f"PostgreSQL not reachable at {PG_URL}")
    url = PG_URL.rsplit("/", 1)[0] + f"/{name}"
    yield url
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url_any(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The same test on SQLite and on PostgreSQL (DESIGN §8: one interface, both stores)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'fieldwatch.db'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def store(db_url_any: str):  # type: ignore[no-untyped-def]
    from fieldwatch.collector.store.db import open_engine
    from fieldwatch.collector.store.store import Store

    s = Store(open_engine(db_url_any))
    yield s
    s.engine.dispose()

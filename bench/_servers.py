"""Benchmarks reuse the test suite's private Mosquitto and PostgreSQL (repo root on sys.path)."""

from __future__ import annotations

import contextlib
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sqlalchemy as sa  # noqa: E402

from tests.conftest import PG_URL  # noqa: E402
from tests.servers import Mosquitto  # noqa: E402

__all__ = ["Mosquitto", "pg_database"]


@contextlib.contextmanager
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database on the test server (tests/conftest.PG_URL), dropped after."""
    admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    name = f"fw_bench_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

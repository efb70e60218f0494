"""Does the store answer? The cheap check the writer polls while it waits out a failing store,
so it retries as soon as the store is back instead of sleeping out its backoff (issue 18: a
30 s outage must not stop ingest for 60 s).

- PostgreSQL: a connection and `SELECT 1` (a database refusing connections, a server down or
  restarting, all fail here).
- SQLite: `SELECT 1` can work while writes cannot, so it checks what writes need: the write
  lock (`BEGIN IMMEDIATE`, not waiting: another process holding it is an outage) and free
  space on the database's file system (a full disk).

A True is a hint, not a promise: the writer retries the batch, and a failure sends it back
to backing off. `open_when_up` is the same patience at start-up.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from pathlib import Path

import sqlalchemy as sa
from fieldwatch.collector.store.db import open_engine
from fieldwatch.collector.store.failures import classify, describe

log = logging.getLogger(__name__)

MIN_FREE = 1 << 20  # bytes free on an SQLite database's file system for it to count as up


def answers(engine: sa.Engine) -> bool:
    try:
        if engine.dialect.name == "sqlite":
            return _sqlite_answers(Path(engine.url.database or ""))
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
        return True
    except (sa.exc.SQLAlchemyError, sqlite3.Error, OSError) as exc:
        log.debug("store does not answer yet: %s", exc)
        return False


def _sqlite_answers(path: Path) -> bool:
    st = os.statvfs(path.parent)
    if st.f_bavail * st.f_frsize < MIN_FREE:
        return False
    conn = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("ROLLBACK")
    finally:
        conn.close()
    return True


def _sqlite_file(engine: sa.Engine) -> bool:
    return engine.dialect.name == "sqlite" and engine.url.database not in (None, "", ":memory:")


def open_when_up(url: str, stop: threading.Event, every: float = 1.0,
                 say_every: float = 5.0) -> sa.Engine | None:
    """`open_engine(url)` (schema migrated), retried every `every` seconds while the store
    cannot be reached — one log line per `say_every` seconds of waiting, no traceback: a
    collector started before its database waits for it and starts within a second of its
    return. An SQLite database that reads but takes no writes (locked by another process, a
    full disk) is waited for too: start-up writes would fail. None when `stop` is set first.
    Any other failure (a schema newer than this fieldwatch, a bad URL) is raised at once."""
    where = sa.make_url(url).render_as_string(hide_password=True)
    said, failed = -float("inf"), 0
    while True:
        try:
            engine = open_engine(url)
        except Exception as exc:  # noqa: BLE001 - only the store's failures are waited out
            if classify(exc) != "store":
                raise
            why = describe(exc)
        else:
            if not _sqlite_file(engine) or answers(engine):
                return engine
            engine.dispose()  # it reads, but start-up writes would fail (and end the run)
            why = "it takes no writes: another process holds its write lock, or its disk is full"
        failed += 1
        if time.monotonic() - said >= say_every:
            said = time.monotonic()
            log.warning("the store %s cannot be reached (%s); retrying every %.0fs "
                        "(%d attempts so far)", where, why, every, failed)
        if stop.wait(every):
            return None

"""Opening a store by URL (`sqlite:///path` or `postgresql://...`) and migrating its schema."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from fieldwatch.collector.store.schema import meta, metadata

SCHEMA_VERSION = 1


def db_url(db: str | None = None, data: str | Path | None = None) -> str:
    """The store URL from `--db` or `--data DIR` (default ./fieldwatch-data)."""
    if db:
        if db.startswith(("sqlite:", "postgresql:", "postgresql+")):
            return db.replace("postgresql://", "postgresql+psycopg://", 1)
        return f"sqlite:///{Path(db).resolve()}"
    directory = Path(data or "fieldwatch-data").resolve()
    return f"sqlite:///{directory / 'fieldwatch.db'}"


def _sqlite_pragmas(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")  # readers (CLI, API) never block the writer
    cur.execute("PRAGMA synchronous=NORMAL")  # durable at checkpoints, safe against corruption
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def open_engine(url: str, create: bool = True) -> sa.Engine:
    """An engine with the schema in place (created or migrated when `create`)."""
    if url.startswith("sqlite:///"):
        path = Path(url[len("sqlite:///"):])
        if create:
            path.parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"check_same_thread": False})
        sa.event.listen(engine, "connect", _sqlite_pragmas)
    else:
        engine = sa.create_engine(url, pool_pre_ping=True)
    if create:
        migrate(engine)
    return engine


def migrate(engine: sa.Engine) -> None:
    """Bring the schema to SCHEMA_VERSION. Version 1 is the first; later versions append steps."""
    with engine.begin() as conn:
        metadata.create_all(conn, checkfirst=True)
        row = conn.execute(sa.select(meta.c.value).where(meta.c.key == "schema_version")).first()
        if row is None:
            conn.execute(meta.insert().values(key="schema_version", value=str(SCHEMA_VERSION)))
        elif int(row[0]) > SCHEMA_VERSION:
            raise RuntimeError(f"database schema {row[0]} is newer than this fieldwatch "
                               f"({SCHEMA_VERSION}); upgrade fieldwatch")

"""Opening a store by URL (`sqlite:///path` or `postgresql://...`) and migrating its schema."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa
from fieldwatch.collector.history.schema import metadata as history_metadata
from fieldwatch.collector.store.schema import TICKET_V2, meta, metadata, tickets

from fieldwatch.errors import ConfigError, Problem

SCHEMA_VERSION = 2


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


def _v2_service_desk(conn: sa.Connection) -> None:
    """v1 → v2: the service-desk columns on tickets (the new tables come from create_all)."""
    have = {c["name"] for c in sa.inspect(conn).get_columns("tickets")}
    for col in TICKET_V2:
        if col.name in have:
            continue
        ddl = f"ALTER TABLE tickets ADD COLUMN {col.name} {col.type.compile(conn.dialect)}"
        if col.server_default is not None:
            ddl += f" NOT NULL DEFAULT '{col.server_default.arg}'"  # type: ignore[attr-defined]
        conn.execute(sa.text(ddl))
    for idx in tickets.indexes:
        idx.create(conn, checkfirst=True)
    conn.execute(tickets.update().where(tickets.c.priority.is_(None)).values(
        priority=tickets.c.severity, sla_priority=tickets.c.severity))


# version → the step that brings a database from version-1 to it; append, never edit.
MIGRATIONS: dict[int, Callable[[sa.Connection], None]] = {2: _v2_service_desk}


def migrate(engine: sa.Engine) -> None:
    """Bring the schema to SCHEMA_VERSION: create what is missing, run each pending step once.

    On PostgreSQL an advisory lock serialises collectors starting together on one database.
    """
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(4242001)"))
        fresh = not sa.inspect(conn).has_table("fieldwatch_meta")
        metadata.create_all(conn, checkfirst=True)
        history_metadata.create_all(conn, checkfirst=True)  # new tables: no version step
        row = conn.execute(sa.select(meta.c.value).where(meta.c.key == "schema_version")).first()
        if row is None:
            # a brand-new database is created at the newest version; a v1 one had no meta row
            version = SCHEMA_VERSION if fresh else 1
            conn.execute(meta.insert().values(key="schema_version", value=str(version)))
        else:
            version = int(row[0])
        if version > SCHEMA_VERSION:
            raise ConfigError([Problem(engine.url.render_as_string(hide_password=True), 0, 0,
                                       f"database schema {version} is newer than this "
                                       f"fieldwatch ({SCHEMA_VERSION}); upgrade fieldwatch")])
        for v in range(version + 1, SCHEMA_VERSION + 1):
            MIGRATIONS[v](conn)
        if version < SCHEMA_VERSION:
            conn.execute(meta.update().where(meta.c.key == "schema_version").values(
                value=str(SCHEMA_VERSION)))


def schema_version(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        row = conn.execute(sa.select(meta.c.value).where(meta.c.key == "schema_version")).first()
    return int(row[0]) if row else 0

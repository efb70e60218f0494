"""A v1 database (the walking skeleton's) migrates to v2 in place, keeping its tickets."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from fieldwatch.collector.store import schema
from fieldwatch.collector.store.db import SCHEMA_VERSION, migrate, open_engine, schema_version
from fieldwatch.collector.store.store import Store

from fieldwatch.errors import ConfigError

V2 = {c.name for c in schema.TICKET_V2}


def v1_metadata() -> sa.MetaData:
    md = sa.MetaData()
    for table in schema.metadata.sorted_tables:
        if table.name == "ticket_escalations":
            continue
        cols = [c._copy() for c in table.columns if not (table.name == "tickets"
                                                        and c.name in V2)]
        sa.Table(table.name, md, *cols)
    return md


def test_v1_database_migrates_in_place(db_url_any: str) -> None:
    engine = open_engine(db_url_any, create=False)
    try:
        with engine.begin() as conn:
            v1_metadata().create_all(conn)
            conn.execute(sa.text("INSERT INTO fieldwatch_meta (key, value) "
                                 "VALUES ('schema_version', '1')"))
            conn.execute(sa.text(
                "INSERT INTO tickets (fingerprint, rule, site, device, labels, severity, state,"
                " title, description, opened_at, updated_at, last_seen, occurrences) VALUES "
                "('fp', 'hot', 'hq', 'a', '{}', 'P2', 'open', 't', '', 1, 1, 1, 3)"))
        migrate(engine)
        migrate(engine)  # idempotent
        assert schema_version(engine) == SCHEMA_VERSION == 2
        cols = {c["name"] for c in sa.inspect(engine).get_columns("tickets")}
        assert cols >= V2
        [t] = Store(engine).list_tickets()
        assert (t["priority"], t["sla_priority"], t["source"], t["reopen_count"],
                t["occurrences"]) == ("P2", "P2", "rule", 0, 3)
    finally:
        engine.dispose()


def test_a_newer_database_is_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'x.db'}"
    engine = open_engine(url)
    with engine.begin() as conn:
        conn.execute(schema.meta.update().values(value="99"))
    try:
        with pytest.raises(ConfigError, match="schema 99 is newer"):
            migrate(engine)
    finally:
        engine.dispose()

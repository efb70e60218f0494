"""A storm of repeats makes exactly one ticket per fingerprint, on both stores, and two
collector processes racing on one PostgreSQL still make exactly one."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa
from fieldwatch.collector.store.db import open_engine
from fieldwatch.collector.store.store import Store

from tests.tickets.storm import ALERTS, storm, write_storm

HERE = Path(__file__).parent


def counts(store: Store) -> tuple[int, int, int]:
    with store.engine.connect() as conn:
        n, occ = conn.execute(sa.text("select count(*), sum(occurrences) from tickets")).one()
        fps = conn.execute(sa.text("select count(distinct fingerprint) from tickets")).scalar()
    return int(n), int(occ), int(fps)


def test_storm_makes_one_ticket_per_fingerprint(store: Store) -> None:
    write_storm(store, storm())
    assert counts(store) == (100, ALERTS, 100)
    assert {t["occurrences"] for t in store.list_tickets()} == {100}
    assert {t["state"] for t in store.list_tickets()} == {"open"}


def test_two_collector_processes_racing_on_postgresql(pg_url: str, tmp_path: Path) -> None:
    Store(open_engine(pg_url)).engine.dispose()  # schema in place before the race
    go = tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, str(HERE / "storm.py"), pg_url, str(go)],
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    go.touch()
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    store = Store(open_engine(pg_url, create=False))
    try:
        n, occ, fps = counts(store)
        assert (n, fps) == (100, 100)  # never two open tickets for one fault
        assert occ == 2 * ALERTS  # both collectors' repeats landed on the same tickets
    finally:
        store.engine.dispose()

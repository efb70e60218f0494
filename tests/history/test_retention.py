"""Retention deletes exactly what is past each horizon (SQLite and PostgreSQL): raw samples
older than raw_for, rollup buckets wholly older than theirs, messages older than keep_raw_for."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from fieldwatch.collector.history.retention import apply_retention
from fieldwatch.collector.history.rollup import FIVE_MIN, HOUR
from fieldwatch.collector.history.schema import rollups_1h, rollups_5m, samples
from fieldwatch.collector.store.schema import messages
from fieldwatch.collector.store.store import Store

from fieldwatch.clock import FakeClock
from tests.history.helpers import DAY, T0, H, feed, message, worker

KEEP = 7 * DAY


@pytest.mark.parametrize("offset", [0.0, 150.0])  # now on a bucket boundary, and between
def test_each_horizon_deletes_exactly_what_is_older(store: Store, offset: float) -> None:
    now = T0 + 800 * DAY + offset
    raw_cut, five_cut, hour_cut, msg_cut = (now - H.raw_for, now - H.rollup_5m_for,
                                            now - H.rollup_1h_for, now - KEEP)
    clock = FakeClock(T0)
    w = worker(store, clock)
    # raw rows (and their messages) around raw's cutoff, and messages around keep_raw_for's
    feed(w, clock, [message("x", i + 1, ts, {"temp": 1.0}) for i, ts in enumerate(
        (msg_cut - 1, msg_cut, msg_cut + 1, raw_cut - 1, raw_cut, raw_cut + 1))], batch=1)
    with store.engine.begin() as conn:
        conn.execute(sa.delete(samples).where(samples.c.ts < raw_cut - 2))
        for table, width, cut in ((rollups_5m, FIVE_MIN, five_cut),
                                  (rollups_1h, HOUR, hour_cut)):
            first = int(cut // width) * width - 2 * width
            conn.execute(table.insert(), [
                {"series_id": 1, "bucket": b, "min": 0, "max": 0, "sum": 0, "count": 1,
                 "last": 0} for b in range(first, first + 5 * width, width)])
    gone = apply_retention(store.engine, now, H, KEEP)
    with store.engine.connect() as conn:
        raw = sorted(conn.execute(sa.select(samples.c.ts)).scalars())
        msgs = sorted(conn.execute(sa.select(messages.c.ts)).scalars())
        kept = {t.name: sorted(conn.execute(sa.select(t.c.bucket)).scalars())
                for t in (rollups_5m, rollups_1h)}
    assert raw == [raw_cut, raw_cut + 1]
    assert msgs == [msg_cut, msg_cut + 1, raw_cut - 1, raw_cut, raw_cut + 1]
    for name, width, cut in (("rollups_5m", FIVE_MIN, five_cut), ("rollups_1h", HOUR, hour_cut)):
        # a bucket goes once all of it is older: it ended at or before the cutoff
        # (on a boundary, the bucket starting at the cutoff is the first kept; between, the
        # one the cutoff falls in)
        assert kept[name][0] == int(cut // width) * width
        assert len(kept[name]) == 3
    assert gone == {"samples": 1, "rollups_5m": 2, "rollups_1h": 2, "messages": 1}
    assert apply_retention(store.engine, now, H, KEEP).total() == 0  # nothing more


def test_retention_deletes_in_bounded_transactions(store: Store,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from fieldwatch.collector.history import retention

    monkeypatch.setattr(retention, "ROWS", 3)
    monkeypatch.setattr(retention, "DEVICE_CHUNK", 2)
    clock = FakeClock(T0)
    feed(worker(store, clock), clock, [message(f"d{i % 5}", i // 5 + 1, T0 + i, {"t": 1.0})
                                       for i in range(20)], batch=20)
    statements: list[str] = []
    sa.event.listen(store.engine, "before_cursor_execute",
                    lambda *a: statements.append(a[2]) if a[2].startswith("DELETE") else None)
    gone = apply_retention(store.engine, T0 + 20 + KEEP, H, KEEP)
    sqlite = store.engine.dialect.name == "sqlite"
    assert gone["messages"] == (19 if sqlite else 20) and gone["samples"] == 20
    assert sum(s.startswith("DELETE FROM messages") for s in statements) == 7  # 3+3+...+2, 0
    assert sum(s.startswith("DELETE FROM samples") for s in statements) == 3  # 5 devices by 2


def test_message_ids_never_go_back_after_retention_empties_the_table(store: Store) -> None:
    """The remote-write cursor is a message id: a new message must get a higher id than every
    one before it, even after retention deleted them all (SQLite reuses max(id)+1, so there
    the newest message stays, however old)."""
    clock = FakeClock(T0)
    w = worker(store, clock)
    feed(w, clock, [message("x", i + 1, T0 + i, {"t": 1.0}) for i in range(5)], batch=5)
    with store.engine.connect() as conn:
        before = conn.execute(sa.select(sa.func.max(messages.c.id))).scalar_one()
    apply_retention(store.engine, T0 + 10 + KEEP, H, KEEP)
    with store.engine.connect() as conn:
        left = list(conn.execute(sa.select(messages.c.id)).scalars())
    assert left == ([before] if store.engine.dialect.name == "sqlite" else [])
    feed(w, clock, [message("x", 6, T0 + 10 + KEEP, {"t": 1.0})], batch=1)
    with store.engine.connect() as conn:
        newest = conn.execute(sa.select(sa.func.max(messages.c.id))).scalar_one()
    assert newest > before

"""The outage buffer: a durable FIFO of MQTT messages in SQLite, bounded by size and age.

Every message the agent sends goes through here: it is written first, handed to MQTT, and
deleted only once the broker acknowledged it (QoS 1 PUBACK). A broker outage, an agent restart
or `kill -9` therefore loses nothing that fitted in the bound; after reconnecting, the backlog
goes out in its original order with its original sequence numbers and timestamps.

Bounds: `max_age` drops messages older than that; `max_bytes` caps the database file exactly
(SQLite's `max_page_count`: a write that would grow it past the cap fails, and the oldest
messages are dropped until it fits; a full disk is handled the same way). Drops are counted per
device and reason, and reported once the link is back.

A rollback journal, not WAL: a write-ahead log is a second file that grows by whole
transactions before a checkpoint, which would make the bound fuzzy; the rollback journal only
exists during a write. synchronous=NORMAL: a committed write survives a killed process. At one
message per device and interval the fsyncs cost nothing; during a replay, acknowledgements are
deleted in batches.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from fieldwatch.clock import Clock

PAGE = 4096
_SCHEMA = """
CREATE TABLE IF NOT EXISTS queue (
    id INTEGER PRIMARY KEY AUTOINCREMENT,   -- never reused: the replay order
    site TEXT NOT NULL, device TEXT NOT NULL, topic TEXT NOT NULL,
    payload BLOB NOT NULL, retain INTEGER NOT NULL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS seqs (
    site TEXT NOT NULL, device TEXT NOT NULL, last INTEGER NOT NULL,
    PRIMARY KEY (site, device));
CREATE TABLE IF NOT EXISTS drops (
    site TEXT NOT NULL, device TEXT NOT NULL, reason TEXT NOT NULL,
    total INTEGER NOT NULL DEFAULT 0, unreported INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (site, device, reason));
"""


@dataclass(frozen=True, slots=True)
class Entry:
    id: int
    topic: str
    payload: bytes
    retain: bool


@dataclass(frozen=True, slots=True)
class Drops:
    site: str
    device: str
    reason: str  # "size" or "age"
    count: int


def _full(exc: sqlite3.Error) -> bool:
    return getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL


class Outbox:
    """Thread-safe: the poll thread adds, the sender thread reads and deletes."""

    def __init__(self, path: Path, clock: Clock, max_bytes: int = 64 << 20,
                 max_age: float = 7 * 86400.0) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path, self.clock, self.max_age = path, clock, max_age
        self.max_bytes = max_bytes
        self.protect_upto = 0  # rows up to here are in MQTT's hands: delivered on reconnect
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        for pragma in (f"page_size={PAGE}", "journal_mode=DELETE", "synchronous=NORMAL",
                       f"max_page_count={max(16, max_bytes // PAGE)}"):
            self._db.execute(f"PRAGMA {pragma}")
        self._db.executescript(_SCHEMA)
        self.count, self.bytes = self._db.execute(
            "SELECT count(*), coalesce(sum(length(payload)), 0) FROM queue").fetchone()

    # -- writing ----------------------------------------------------------------------------

    def add(self, site: str, device: str, topic: str, payload: bytes,
            retain: bool = False) -> None:
        self._write(site, device, topic, lambda: payload, retain, numbered=False)

    def add_numbered(self, site: str, device: str, topic: str, build: Callable[[int], bytes],
                     retain: bool = False) -> int:
        """Take the device's next sequence number and queue `build(seq)` in one transaction,
        so a crash can neither reuse a number nor leave a hole that was never sent."""
        holder: list[int] = []

        def payload() -> bytes:
            self._db.execute("INSERT INTO seqs VALUES (?, ?, 1) ON CONFLICT (site, device) "
                             "DO UPDATE SET last = last + 1", (site, device))
            seq = self._db.execute("SELECT last FROM seqs WHERE site = ? AND device = ?",
                                   (site, device)).fetchone()[0]
            holder[:] = [seq]
            return build(seq)

        self._write(site, device, topic, payload, retain, numbered=True)
        return holder[0]

    def _write(self, site: str, device: str, topic: str, payload: Callable[[], bytes],
               retain: bool, numbered: bool) -> None:
        now = self.clock.now()
        with self._lock:
            self._expire(now)
            for _ in range(64):
                try:
                    self._db.execute("BEGIN IMMEDIATE")
                    body = payload()
                    self._db.execute(
                        "INSERT INTO queue (site, device, topic, payload, retain, created) "
                        "VALUES (?, ?, ?, ?, ?, ?)", (site, device, topic, body, int(retain), now))
                    self._db.execute("COMMIT")
                    self.count += 1
                    self.bytes += len(body)
                    return
                except sqlite3.OperationalError as exc:
                    if self._db.in_transaction:  # SQLITE_FULL may have rolled back already
                        self._db.execute("ROLLBACK")
                    if not _full(exc):
                        raise
                if not self._drop_oldest(max(1, self.count // 20)):
                    break
            # Nothing left to drop and it still does not fit: this message is the drop. Its
            # sequence number is spent all the same, so the collector sees the gap.
            self._db.execute("BEGIN IMMEDIATE")
            if numbered:
                payload()
            self._count_drops([(site, device, 1)], "size")
            self._db.execute("COMMIT")

    def _drop_oldest(self, n: int) -> bool:
        """Drop the `n` oldest rows not already in MQTT's hands; False when there are none."""
        where = "id > ? ORDER BY id LIMIT ?"
        return self._drop(where, (self.protect_upto, n), "size") > 0

    def _expire(self, now: float) -> None:
        oldest = self._db.execute("SELECT created FROM queue ORDER BY id LIMIT 1").fetchone()
        if oldest is not None and oldest[0] < now - self.max_age:
            self._drop("id > ? AND created < ? ORDER BY id", (self.protect_upto,
                                                              now - self.max_age), "age")

    def _drop(self, where: str, args: tuple[float, ...], reason: str) -> int:
        self._db.execute("BEGIN IMMEDIATE")
        rows = self._db.execute(f"SELECT id, site, device, length(payload) FROM queue "
                                f"WHERE {where}", args).fetchall()
        if rows:
            self._db.executemany("DELETE FROM queue WHERE id = ?", [(r[0],) for r in rows])
            per: dict[tuple[str, str], int] = {}
            for _, site, device, _n in rows:
                per[(site, device)] = per.get((site, device), 0) + 1
            self._count_drops([(s, d, n) for (s, d), n in per.items()], reason)
        self._db.execute("COMMIT")  # deleting frees pages, so this commit always fits
        self.count -= len(rows)
        self.bytes -= sum(r[3] for r in rows)
        return len(rows)

    def _count_drops(self, per: list[tuple[str, str, int]], reason: str) -> None:
        self._db.executemany(
            "INSERT INTO drops VALUES (?, ?, ?, ?, ?) ON CONFLICT (site, device, reason) DO "
            "UPDATE SET total = total + excluded.total, unreported = unreported + "
            "excluded.unreported", [(s, d, reason, n, n) for s, d, n in per])

    # -- reading, acknowledging -------------------------------------------------------------

    def peek(self, after: int, limit: int) -> list[Entry]:
        """The next `limit` messages after row id `after`, oldest first."""
        with self._lock:
            rows = self._db.execute("SELECT id, topic, payload, retain FROM queue WHERE id > ? "
                                    "ORDER BY id LIMIT ?", (after, limit)).fetchall()
        return [Entry(r[0], r[1], r[2], bool(r[3])) for r in rows]

    def delete(self, ids: list[int]) -> None:
        """Forget messages the broker acknowledged."""
        if not ids:
            return
        with self._lock:
            marks = ",".join("?" * len(ids))
            self._db.execute("BEGIN IMMEDIATE")
            gone = self._db.execute(f"SELECT count(*), coalesce(sum(length(payload)), 0) "
                                    f"FROM queue WHERE id IN ({marks})", ids).fetchone()
            self._db.execute(f"DELETE FROM queue WHERE id IN ({marks})", ids)
            self._db.execute("COMMIT")
            self.count -= gone[0]
            self.bytes -= gone[1]

    def drops_total(self) -> dict[str, int]:
        """Messages dropped since the buffer was created, by reason (for agent.* samples)."""
        with self._lock:
            rows = self._db.execute("SELECT reason, sum(total) FROM drops GROUP BY reason")
            return {reason: int(n) for reason, n in rows}

    def report_drops(self, report: Callable[[Drops], tuple[str, bytes]]) -> list[Drops]:
        """Queue one report per device and reason with unreported drops (`report` gives the
        topic and payload) and mark them reported; a crash in between can repeat a report,
        never lose one."""
        with self._lock:
            rows = [Drops(*r) for r in self._db.execute(
                "SELECT site, device, reason, unreported FROM drops WHERE unreported > 0")]
        for d in rows:
            topic, payload = report(d)
            self.add(d.site, d.device, topic, payload)
            with self._lock:
                self._db.execute("UPDATE drops SET unreported = unreported - ? WHERE site = ? "
                                 "AND device = ? AND reason = ?", (d.count, d.site, d.device,
                                                                   d.reason))
        return rows

    def close(self) -> None:
        with self._lock:
            self._db.close()

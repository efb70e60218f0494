"""The durable remote-write exporter: tails the `messages` table and sends every sample on.

The collector stores each metrics message in `messages` inside its batch's transaction, so the
table is already a durable, ordered log. The exporter keeps a cursor per exporter name in
`remote_write_cursors` (the id of the last message dealt with) and, each round:

1. reads the metrics messages after the cursor, in id order, up to `max_messages`, and packs
   whole messages into one WriteRequest of at most about `max_samples` samples;
2. sends it: on 2xx the cursor moves past those messages (compare-and-set, so two collectors
   sharing a database never move it backwards); on a connection error, timeout, 5xx or 429 it
   stays, and the same messages are sent again after a backoff doubling from `first_delay` to
   `max_delay` — retried until the server takes them;
3. a request the server refuses for good (another 4xx: out-of-order or too-old samples on
   Prometheus, say) is split in halves and each half sent, left first, down to single messages;
   a single message still refused is set aside — counted in
   `remote_write_rejected_samples_total{exporter}`, logged (rate-limited) — and the cursor moves
   past it. One refused message among n costs about 2·log2(n) extra requests.

A restart resumes at the cursor. A crash between the server's 2xx and the cursor's commit sends
those messages again: the same samples at the same timestamps, which Prometheus and
VictoriaMetrics keep once, so query results do not change.

Ids are handed out when rows are inserted, not when they commit: with several collectors
writing one PostgreSQL database, a row with a smaller id can become visible after a bigger one.
So the exporter only reads up to the highest id it saw at least `settle` seconds ago; a
transaction that stays open longer than that between inserting its messages and committing
could be skipped (the collector's batches commit in milliseconds; a failed one is retried with
new ids).

Retention: the exporter does not hold back `keep_raw_for`. An exporter further behind than that
(the server unreachable for longer) loses the oldest messages it had not sent; the gauges
`remote_write_lag_seconds{exporter}` and `remote_write_pending_messages{exporter}` show how far
behind it is, and it logs a warning once past half of `keep_raw_for` (docs/history.md).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import httpx
import sqlalchemy as sa
from fieldwatch.collector.history.remote_config import RemoteWriteConfig
from fieldwatch.collector.history.remote_write import Encoder, Rejected, Retry, send
from fieldwatch.collector.store.schema import messages, remote_write_cursors
from fieldwatch.collector.telemetry.stats import Stats

from fieldwatch import wire
from fieldwatch.clock import Clock
from fieldwatch.errors import WireFormatError

log = logging.getLogger(__name__)


@dataclass
class Round:
    """What one round did (tests and the benchmark read it)."""

    sent_messages: int = 0
    sent_samples: int = 0
    rejected_messages: int = 0
    rejected_samples: int = 0
    skipped: int = 0  # rows that did not decode as metrics (counted, passed)
    requests: int = 0
    retry: str | None = None  # the reason, when the server must be tried again later
    idle: bool = False  # nothing to send (yet)


@dataclass
class _Msg:
    id: int
    metrics: wire.Metrics
    samples: int = field(init=False)

    def __post_init__(self) -> None:
        self.samples = len(self.metrics.samples)


class Exporter:
    """One remote-write target. `run_once` is one round (what tests drive); `start` runs rounds
    on a thread until `stop`."""

    def __init__(self, cfg: RemoteWriteConfig, engine: sa.Engine, clock: Clock, stats: Stats,
                 client: httpx.Client | None = None, keep_raw_for: float | None = None,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.cfg, self.engine, self.clock, self.stats = cfg, engine, clock, stats
        self.url = str(cfg.url)
        self.headers = cfg.headers()
        self.client = client or httpx.Client(timeout=cfg.timeout)
        self._own_client = client is None
        self.keep_raw_for = keep_raw_for
        self.monotonic = monotonic
        self.encoder = Encoder()
        self.lag_seconds = 0.0  # age (received_at) of the oldest message not yet sent
        self.pending_messages = 0  # ids after the cursor (an upper bound: events count too)
        self.failing_since: float | None = None
        self.last_error = ""
        self._seen: deque[tuple[float, int]] = deque()  # (monotonic, max id) observations
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_log = -float("inf")
        self._warned_retention = False
        self.cursor = self._load_cursor()
        label = cfg.name
        stats.gauge("remote_write_lag_seconds", lambda: self.lag_seconds, label)
        stats.gauge("remote_write_pending_messages", lambda: self.pending_messages, label)
        stats.gauge("remote_write_cursor", lambda: self.cursor, label)

    # -- the cursor --------------------------------------------------------------------------

    def _load_cursor(self) -> int:
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(remote_write_cursors.c.last_id).where(
                remote_write_cursors.c.name == self.cfg.name)).first()
            if row is not None:
                return int(row[0])
            start = 0
            if self.cfg.start == "now":
                start = int(conn.execute(sa.select(sa.func.max(messages.c.id))).scalar() or 0)
            try:
                with conn.begin_nested():
                    conn.execute(remote_write_cursors.insert().values(
                        name=self.cfg.name, last_id=start, updated_at=self.clock.now()))
            except sa.exc.IntegrityError:  # another collector created it meanwhile
                return int(conn.execute(sa.select(remote_write_cursors.c.last_id).where(
                    remote_write_cursors.c.name == self.cfg.name)).scalar_one())
            log.info("remote_write %s: new cursor at message id %d (start: %s)",
                     self.cfg.name, start, self.cfg.start)
            return start

    def _advance(self, to: int) -> None:
        """Move the cursor to `to` unless another collector moved it already (then adopt)."""
        with self.engine.begin() as conn:
            moved = conn.execute(remote_write_cursors.update().where(
                remote_write_cursors.c.name == self.cfg.name,
                remote_write_cursors.c.last_id < to).values(
                last_id=to, updated_at=self.clock.now())).rowcount
            if not moved:
                to = max(to, int(conn.execute(sa.select(remote_write_cursors.c.last_id).where(
                    remote_write_cursors.c.name == self.cfg.name)).scalar_one()))
        self.cursor = to

    # -- one round ---------------------------------------------------------------------------

    def _horizon(self) -> int | None:
        """The highest id that was visible `settle` seconds ago (None: nothing yet)."""
        now = self.monotonic()
        with self.engine.connect() as conn:
            top = int(conn.execute(sa.select(sa.func.max(messages.c.id))).scalar() or 0)
        self._seen.append((now, top))
        horizon = None
        while self._seen and self._seen[0][0] <= now - self.cfg.settle:
            horizon = self._seen.popleft()[1]
        if horizon is not None:
            self._seen.appendleft((now - self.cfg.settle, horizon))  # still true next round
        return horizon

    def _read(self, horizon: int) -> tuple[list[_Msg], int, int]:
        """(decoded metrics messages after the cursor, the last id read, rows skipped)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(messages.c.id, messages.c.payload, messages.c.received_at)
                .where(messages.c.id > self.cursor, messages.c.id <= horizon,
                       messages.c.kind == "metrics")
                .order_by(messages.c.id).limit(self.cfg.max_messages)).all()
        self.lag_seconds = max(0.0, self.clock.now() - rows[0].received_at) if rows else 0.0
        self._check_retention()
        out, skipped, budget = [], 0, self.cfg.max_samples
        last = self.cursor
        for row in rows:
            try:
                msg = wire.decode(bytes(row.payload), max_bytes=len(row.payload) + 1)
            except WireFormatError as exc:
                msg, reason = None, f"{exc}"
            else:
                reason = "not a metrics message"
            if not isinstance(msg, wire.Metrics):
                skipped += 1
                self.stats.inc("remote_write_skipped_total", self.cfg.name)
                self._log(logging.WARNING, "message %d not sent: %s", row.id, reason)
                last = row.id
                continue
            if out and budget - len(msg.samples) < 0:
                break
            out.append(_Msg(row.id, msg))
            budget -= len(msg.samples)
            last = row.id
        return out, last, skipped

    def run_once(self) -> Round:
        """Read, send, advance; never raises for the server's or the data's faults."""
        r = Round()
        horizon = self._horizon()
        if horizon is None or horizon <= self.cursor:
            r.idle = True
            self.lag_seconds, self.pending_messages = 0.0, 0
            return r
        self.pending_messages = horizon - self.cursor  # an upper bound: ids of any kind
        msgs, last, r.skipped = self._read(horizon)
        if not msgs:
            if last > self.cursor:
                self._advance(last)
            r.idle = True
            return r
        todo: list[Sequence[_Msg]] = [msgs]
        while todo:
            part = todo.pop()
            try:
                r.requests += 1
                send(self.client, self.url, self.encoder.batch(m.metrics for m in part).body(),
                     self.headers)
            except Retry as exc:
                r.retry = exc.reason
                self.stats.inc("remote_write_retries_total", self.cfg.name)
                self._failing(exc.reason)
                return r
            except Rejected as exc:
                if len(part) > 1:
                    mid = len(part) // 2
                    todo += [part[mid:], part[:mid]]  # left half popped first
                    continue
                n = part[0].samples
                r.rejected_messages += 1
                r.rejected_samples += n
                self.stats.inc("remote_write_rejected_samples_total", self.cfg.name, n)
                self._log(logging.ERROR, "remote_write %s: server refused message %d (%s/%s, "
                          "%d samples) for good, set aside: %s", self.cfg.name, part[0].id,
                          part[0].metrics.site, part[0].metrics.device, n, exc.reason)
            else:
                n = sum(m.samples for m in part)
                r.sent_messages += len(part)
                r.sent_samples += n
                self.stats.inc("remote_write_samples_total", self.cfg.name, n)
                self.stats.inc("remote_write_requests_total", self.cfg.name)
            self._advance(part[-1].id)
        if last > self.cursor:  # rows after the last message packed were skipped ones
            self._advance(last)
        self._recovered()
        return r

    # -- health and logs ---------------------------------------------------------------------

    def _failing(self, reason: str) -> None:
        if self.failing_since is None:
            self.failing_since = self.clock.now()
        self.last_error = reason
        self._log(logging.WARNING, "remote_write %s: cannot send (%s); keeping the samples and "
                  "retrying", self.cfg.name, reason)

    def _recovered(self) -> None:
        if self.failing_since is not None:
            log.info("remote_write %s: sending again after %.0fs", self.cfg.name,
                     self.clock.now() - self.failing_since)
        self.failing_since, self.last_error = None, ""

    def _check_retention(self) -> None:
        if self.keep_raw_for is None:
            return
        behind = self.lag_seconds > self.keep_raw_for / 2
        if behind and not self._warned_retention:
            log.warning("remote_write %s is %.0fs behind; messages older than keep_raw_for "
                        "(%.0fs) are deleted whether sent or not", self.cfg.name,
                        self.lag_seconds, self.keep_raw_for)
        self._warned_retention = behind

    def _log(self, level: int, fmt: str, *args: object) -> None:
        now = time.monotonic()
        if now - self._last_log > 5:  # a stream of failures must not flood the log
            self._last_log = now
            log.log(level, fmt, *args)

    # -- the thread --------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"remote-write-{self.cfg.name}",
                                        daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 15.0) -> None:
        """Stop after the request in flight (bounded by `timeout`); what is unsent stays."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        if self._own_client:
            self.client.close()

    def _run(self) -> None:
        delay = self.cfg.first_delay
        while not self._stop.is_set():
            try:
                r = self.run_once()
            except Exception:  # noqa: BLE001 - the database failed us: counted, retried
                self.stats.inc("remote_write_errors_total", self.cfg.name)
                log.exception("remote_write %s: round failed; retrying in %.1fs",
                              self.cfg.name, delay)
                r = Round(retry="error")
            if r.retry is not None:
                self._stop.wait(delay)
                delay = min(delay * 2, self.cfg.max_delay)
                continue
            delay = self.cfg.first_delay
            if r.idle:
                self._stop.wait(self.cfg.poll)

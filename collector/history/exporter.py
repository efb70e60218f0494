"""The durable remote-write exporter: tails the `messages` table and sends every sample on.

The collector stores each metrics message in `messages` inside its batch's transaction, so the
table is already a durable, ordered log. The exporter keeps a cursor per exporter name in
`remote_write_cursors` (the id of the last message dealt with) and, each round:

1. reads the metrics messages after the cursor, in id order, up to `max_messages`, and packs
   whole messages into one WriteRequest of at most about `max_samples` samples;
2. sends it: on 2xx the cursor moves past those messages; on a connection error, timeout, 5xx
   or 429 it
   stays, and the same messages are sent again after a backoff doubling from `first_delay` to
   `max_delay` — retried until the server takes them;
3. a request the server refuses for good (another 4xx: out-of-order or too-old samples on
   Prometheus, say) is split in halves and each half sent, left first, down to single messages;
   a single message still refused is set aside — counted in
   `remote_write_rejected_samples_total{exporter}`, logged (rate-limited) — and the cursor moves
   past it. One refused message among n costs about 2·log2(n) extra requests.

The cursor is committed (compare-and-set, so two collectors sharing a database never move it
backwards) when a round has caught up with the stored messages, before a retry, when the
exporter stops, and while a backlog drains at most every `CURSOR_EVERY` seconds: a commit per
request waited on the collector's own writes for SQLite's write lock (about 47 ms each while
ingest ran flat out) — a third of the exporter's time. A restart resumes at the committed
cursor; a crash re-sends what went out after it (at most about a second's worth): the same
samples at the same timestamps, which Prometheus and VictoriaMetrics keep once, so query
results do not change.

While one request is out, the exporter's thread has the next one read and encoded on a helper
thread (`_run`); requests themselves go one at a time, in id order.

Ids are handed out when rows are inserted, not when they commit: with several collectors
writing one PostgreSQL database, a row with a smaller id can become visible after a bigger one.
So the exporter only reads up to the highest id it saw at least `settle` seconds ago (1 s by
default); a transaction that stays open longer than that between inserting its messages and
committing could be skipped (the collector's batches commit in milliseconds; a failed one is
retried with new ids). SQLite has one writer at a time, holding its lock from insert to commit,
so its ids become visible in order: there `settle` defaults to 0.

Retention: the exporter does not hold back `keep_raw_for`. An exporter further behind than that
(the server unreachable for longer) loses the oldest messages it had not sent; the gauges
`remote_write_lag_seconds{exporter}` and `remote_write_pending_messages{exporter}` show how far
behind it is, and it logs a warning once past half of `keep_raw_for` (docs/history.md).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import httpx
import msgspec
import sqlalchemy as sa
from fieldwatch.collector.history.remote_config import RemoteWriteConfig
from fieldwatch.collector.history.remote_write import Encoder, Rejected, Retry, send
from fieldwatch.collector.store.schema import messages, remote_write_cursors
from fieldwatch.collector.telemetry.stats import Stats

from fieldwatch import wire
from fieldwatch.clock import Clock
from fieldwatch.errors import WireFormatError

log = logging.getLogger(__name__)

CURSOR_EVERY = 1.0  # seconds between cursor commits while a backlog drains
_METRICS = msgspec.json.Decoder(wire.Metrics)


def decode_stored(payload: bytes) -> wire.Metrics:
    """A stored metrics row, decoded. It passed `wire.decode` when it was stored, so the
    common case goes straight to a metrics-only decoder (no nesting pre-scan: a schema without
    free-form fields cannot recurse); anything odd takes the full path for its reason."""
    if payload.isascii():
        try:
            msg = _METRICS.decode(payload)
        except (msgspec.MsgspecError, RecursionError):
            pass
        else:
            if msg.v == wire.VERSION:
                return msg
    out = wire.decode(payload, max_bytes=len(payload) + 1)
    if not isinstance(out, wire.Metrics):
        raise WireFormatError("invalid", "not a metrics message")
    return out


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
class _Prepared:
    """A round's request, read and encoded, not yet sent."""

    round: Round
    after: int  # read after this id
    msgs: list[_Msg]
    last: int  # the last id read (skipped rows included)
    caught_up: bool  # nothing more was there to read
    body: bytes


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
        self.encoder = Encoder()  # used by whichever thread reads ahead
        self._splitter = Encoder()  # the sending thread's, for halves of a refused request
        # SQLite's ids become visible in order (one writer at a time): nothing to wait for
        self.settle = cfg.settle if cfg.settle is not None else (
            0.0 if engine.dialect.name == "sqlite" else 1.0)
        self.lag_seconds = 0.0  # age (received_at) of the oldest message not yet sent
        self.pending_messages = 0  # ids after the cursor (an upper bound: events count too)
        self.failing_since: float | None = None
        self.last_error = ""
        self._seen: deque[tuple[float, int]] = deque()  # (monotonic, max id) observations
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_log = -float("inf")
        self._warned_retention = False
        self.cursor = self.saved = self._load_cursor()  # sent up to / committed up to
        self._saved_at = monotonic()
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
        """Everything up to `to` is dealt with (committed later, by `save`)."""
        self.cursor = max(self.cursor, to)

    def save(self, now: bool = True) -> None:
        """Commit the cursor unless another collector moved it further already (then adopt
        theirs); with `now` False only if the last commit is `CURSOR_EVERY` old."""
        at = self.monotonic()
        if self.cursor == self.saved or (not now and at - self._saved_at < CURSOR_EVERY):
            return
        to = self.cursor
        with self.engine.begin() as conn:
            moved = conn.execute(remote_write_cursors.update().where(
                remote_write_cursors.c.name == self.cfg.name,
                remote_write_cursors.c.last_id < to).values(
                last_id=to, updated_at=self.clock.now())).rowcount
            if not moved:
                to = max(to, int(conn.execute(sa.select(remote_write_cursors.c.last_id).where(
                    remote_write_cursors.c.name == self.cfg.name)).scalar_one()))
        self.cursor = self.saved = max(self.cursor, to)
        self._saved_at = at

    # -- one round ---------------------------------------------------------------------------

    def _horizon(self) -> int | None:
        """The highest id that was visible `settle` seconds ago (None: nothing yet)."""
        now = self.monotonic()
        with self.engine.connect() as conn:
            top = int(conn.execute(sa.select(sa.func.max(messages.c.id))).scalar() or 0)
        self._seen.append((now, top))
        horizon = None
        while self._seen and self._seen[0][0] <= now - self.settle:
            horizon = self._seen.popleft()[1]
        if horizon is not None:
            self._seen.appendleft((now - self.settle, horizon))  # still true next round
        return horizon

    def _read(self, horizon: int, after: int) -> tuple[list[_Msg], int, int, bool]:
        """(decoded metrics messages after id `after`, the last id read, rows skipped, whether
        that was all there is up to `horizon`)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(messages.c.id, messages.c.payload, messages.c.received_at)
                .where(messages.c.id > after, messages.c.id <= horizon,
                       messages.c.kind == "metrics")
                .order_by(messages.c.id).limit(self.cfg.max_messages)).all()
        self.lag_seconds = max(0.0, self.clock.now() - rows[0].received_at) if rows else 0.0
        self._check_retention()
        out, skipped, budget = [], 0, self.cfg.max_samples
        last = after
        caught_up = len(rows) < self.cfg.max_messages
        for row in rows:
            try:
                msg, reason = decode_stored(bytes(row.payload)), ""
            except WireFormatError as exc:
                msg, reason = None, f"{exc}"
            if msg is None:
                skipped += 1
                self.stats.inc("remote_write_skipped_total", self.cfg.name)
                self._log(logging.WARNING, "message %d not sent: %s", row.id, reason)
                last = row.id
                continue
            if out and budget - len(msg.samples) < 0:
                caught_up = False
                break
            out.append(_Msg(row.id, msg))
            budget -= len(msg.samples)
            last = row.id
        return out, last, skipped, caught_up

    def _prepare(self, after: int) -> _Prepared:
        """Read and encode the next request after id `after` (the database half of a round)."""
        r = Round()
        horizon = self._horizon()
        if horizon is None or horizon <= after:
            r.idle = True
            self.lag_seconds, self.pending_messages = 0.0, 0
            return _Prepared(r, after, [], after, True, b"")
        self.pending_messages = horizon - after  # an upper bound: ids of any kind
        msgs, last, r.skipped, caught_up = self._read(horizon, after)
        r.idle = not msgs
        body = self.encoder.batch(m.metrics for m in msgs).body() if msgs else b""
        return _Prepared(r, after, msgs, last, caught_up, body)

    def run_once(self) -> Round:
        """Read, send, advance (the cursor's commit: see `save`); never raises for the
        server's or the data's faults."""
        return self._deliver(self._prepare(self.cursor))

    def _deliver(self, p: _Prepared) -> Round:
        """The network half of a round: send what `_prepare` made, split what is refused."""
        r = p.round
        if r.idle:
            if p.last > self.cursor:
                self._advance(p.last)
            self.save()
            return r
        todo: list[Sequence[_Msg]] = [p.msgs]
        while todo:
            part = todo.pop()
            body = p.body if part is p.msgs else self._splitter.batch(
                m.metrics for m in part).body()
            try:
                r.requests += 1
                send(self.client, self.url, body, self.headers)
            except Retry as exc:
                r.retry = exc.reason
                self.stats.inc("remote_write_retries_total", self.cfg.name)
                self._failing(exc.reason)
                self.save()
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
        if p.last > self.cursor:  # rows after the last message packed were skipped ones
            self._advance(p.last)
        self.save(now=p.caught_up)
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
        """Stop after the request in flight (bounded by `timeout`) and commit the cursor; what
        is unsent stays."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        if self._thread is None or not self._thread.is_alive():
            self._final_save()
        if self._own_client:
            self.client.close()

    def _final_save(self) -> None:
        try:
            self.save()
        except sa.exc.SQLAlchemyError as exc:  # what went out since is sent again: no loss
            log.warning("remote_write %s: cursor not saved at stop (%s); the next start "
                        "re-sends from %d", self.cfg.name, type(exc).__name__, self.saved)

    def _run(self) -> None:
        """Rounds until stopped. While a request is out, the next one is read and encoded on
        a helper thread (requests still go one at a time, in id order: Prometheus refuses a
        series' samples older than its newest); it is used only if that request went through
        and left the cursor where the read began, else read again."""
        delay = self.cfg.first_delay
        ahead: Future[_Prepared] | None = None
        with ThreadPoolExecutor(1, thread_name_prefix=f"remote-write-{self.cfg.name}-read"
                                ) as pool:
            while not self._stop.is_set():
                try:
                    p = ahead.result() if ahead is not None else self._prepare(self.cursor)
                    ahead = None
                    if not p.round.idle and not p.caught_up:
                        ahead = pool.submit(self._prepare, p.last)
                    r = self._deliver(p)
                    if ahead is not None and (r.retry is not None or self.cursor != p.last):
                        _drain(ahead)
                        ahead = None
                except Exception:  # noqa: BLE001 - the database failed us: counted, retried
                    if ahead is not None:
                        _drain(ahead)
                        ahead = None
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
            if ahead is not None:
                _drain(ahead)


def _drain(f: Future[_Prepared]) -> None:
    """Wait for a read-ahead that will not be used (its errors: the next round's to meet)."""
    with contextlib.suppress(Exception):
        f.result()

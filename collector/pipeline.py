"""Off the network thread: batches of received messages → rules → one store transaction.

`prepare` is pure (messages and alert state in, a BatchWrite out) and is what tests and
benchmarks drive; `Worker` is the thread that feeds it from the ingest queue, ticks the rule
engine's clock (absence, offline, silences ending), swaps in reloaded rules between batches and
records muted alerts (silenced, or explained by a parent's outage) instead of ticketing them.
A batch the store refuses is retried or split by store/writer.py; `snapshot` is what /healthz
reads (store/health.py). Each item's `ack` (Received) is called only after its batch committed
or it was set aside as a dead letter: what is unstored at a stop or a crash stays unacknowledged
at the broker and is redelivered.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence

import msgspec
from fieldwatch.collector.history.config import HistoryConfig
from fieldwatch.collector.history.ingest import Recorder, SampleRows
from fieldwatch.collector.ingest import Received
from fieldwatch.collector.ingest.guard import LogEvery
from fieldwatch.collector.ingest.memory import Trimmer
from fieldwatch.collector.ingest.sequence import SeqState, observe
from fieldwatch.collector.rules.engine import Engine, EngineState, Transition
from fieldwatch.collector.rules.model import Silence
from fieldwatch.collector.store.deadletter import DeadLetters
from fieldwatch.collector.store.failures import log_failure
from fieldwatch.collector.store.health import Observed
from fieldwatch.collector.store.parts import BatchParts
from fieldwatch.collector.store.silences import SilenceStore
from fieldwatch.collector.store.store import (
    BatchWrite,
    DeviceSeen,
    Fenced,
    RawMessage,
    Store,
)
from fieldwatch.collector.store.writer import Writer, Written
from fieldwatch.collector.telemetry.stats import Stats
from fieldwatch.collector.tickets.alerts import TicketChange, plan

from fieldwatch import wire
from fieldwatch.clock import Clock

log = logging.getLogger(__name__)


Sequences = dict[tuple[str, str], SeqState]
DEFAULT_HISTORY = HistoryConfig()  # the worker keeps metric history unless told otherwise


def prepare(items: Sequence[Received], engine: Engine, state: EngineState,
            sequences: Sequences | None = None, recorder: Recorder | None = None) -> BatchWrite:
    """The store write for a batch (muted alerts left out: see `prepare_all`)."""
    return prepare_all(items, engine, state, sequences, recorder)[0]


def split_muted(changes: list[TicketChange]) -> tuple[list[TicketChange], list[TicketChange]]:
    """(ticket changes, muted changes to record): a silenced or parent-suppressed alert opens
    no ticket; its openings and clearings are recorded, its repeats only counted."""
    return ([c for c in changes if not c.muted],
            [c for c in changes if c.muted and c.kind != "repeat"])


def prepare_all(items: Sequence[Received], engine: Engine, state: EngineState,
                sequences: Sequences | None = None, recorder: Recorder | None = None
                ) -> tuple[BatchWrite, list[TicketChange]]:
    """`sequences` (per device, kept by the caller across batches) drops duplicate metrics
    messages and accounts for gaps; rules see that as `agent.samples_missing` etc.
    `recorder` adds the samples the rules saw (gap accounting included) to the metric history."""
    sequences = {} if sequences is None else sequences
    batch = BatchWrite(samples=SampleRows() if recorder is not None else None)
    transitions: list[Transition] = []
    for index, item in enumerate(items):
        msg = item.message
        key = (msg.site, msg.device)
        seen = batch.devices.get(key)
        if seen is None:
            seen = batch.devices[key] = DeviceSeen(msg.site, msg.device, item.received_at,
                                                  item.received_at)
        seen.last = max(seen.last, item.received_at)
        seen.count += 1
        if isinstance(msg, wire.Metrics):
            seen.seq = sequences.setdefault(key, SeqState())
            if observe(seen.seq, msg.seq, msg.ts) == "duplicate":
                continue
            seen_msg = _with_accounting(msg, seen.seq)
            engine.observe(state, seen_msg, item.received_at, transitions)
            if batch.samples is not None and recorder is not None:
                recorder.add(batch.samples, index, seen_msg, item.received_at)
            seen.last_seq = seen.seq.last
            seen.agent = msg.agent
            batch.raw.append(RawMessage(msg.site, msg.device, "metrics", msg.seq, msg.ts,
                                        item.received_at, item.payload))
            batch.raw_items.append(index)
            continue
        engine.observe(state, msg, item.received_at, transitions)
        if isinstance(msg, wire.Status):
            seen.status, seen.status_cause = msg.state, msg.cause
            seen.status_at = msg.ts if msg.ts is not None else item.received_at
        elif isinstance(msg, wire.Inventory):
            seen.inventory = dict(msg.facts)
        elif isinstance(msg, wire.Event):
            batch.raw.append(RawMessage(msg.site, msg.device, "event", msg.seq, msg.ts,
                                        item.received_at, item.payload))
            batch.raw_items.append(index)
    batch.changes, muted = split_muted(plan(transitions))
    return batch, muted


def _with_accounting(msg: wire.Metrics, seq: SeqState) -> wire.Metrics:
    """The message as rules see it: plus the device's gap accounting as samples (not stored)."""
    return msgspec.structs.replace(msg, samples=[
        *msg.samples,
        wire.Sample("agent.samples_missing", float(seq.missing)),
        wire.Sample("agent.samples_backfilled_total", float(seq.backfilled)),
        wire.Sample("agent.duplicates_total", float(seq.duplicates))])


class Worker:
    """Drains the queue in batches of up to `batch_max`; `batch_wait` optionally lingers for
    more messages when the queue runs dry (0: write at once)."""

    def __init__(self, source: queue.Queue[Received], store: Store, engine: Engine,
                 clock: Clock, stats: Stats, batch_max: int = 2000,
                 batch_wait: float = 0.0,
                 on_opened: Callable[[list[int]], None] | None = None,
                 connected: Callable[[], bool] | None = None,
                 silences: SilenceStore | None = None, tick_interval: float = 1.0,
                 silence_refresh: float = 5.0,
                 history: HistoryConfig | None = DEFAULT_HISTORY,
                 admit: Callable[[Sequence[Received]], Sequence[Received]] | None = None
                 ) -> None:
        self.source, self.store, self.engine = source, store, engine
        # cluster mode (cluster/handover.py): take devices over before their first message;
        # what it leaves out is neither processed nor acknowledged
        self.admit = admit
        self.batch_lock = threading.Lock()  # held while a batch is admitted, stored and acked
        # cluster mode: batches carry a fence (store.Fenced); a fenced batch goes here, unacked
        self.on_fenced: Callable[[Sequence[Received]], None] | None = None
        self.clock, self.stats = clock, stats
        self.batch_max, self.batch_wait = batch_max, batch_wait
        self.on_opened = on_opened  # e.g. run the rule's diagnostics on the new tickets
        self.connected = connected
        self.silences = silences
        self.tick_interval, self.silence_refresh = tick_interval, silence_refresh
        self.state = EngineState()
        self.sequences: Sequences = store.sequence_states()
        # the metric history's per-series memory (None: history off)
        self.recorder = Recorder(history.raw_for) if history and history.enabled else None
        self._next_engine: Engine | None = None
        self._runtime_silences: list[Silence] = []
        self._last_tick = -float("inf")
        self._last_silences = -float("inf")
        self._stop = threading.Event()  # drain what is queued, then stop
        self._abort = threading.Event()  # stop now: the writer gives up a batch it retries
        self._ack_log = LogEvery(5.0)
        self.trimmer = Trimmer()  # RSS back down after a backlog (ingest/memory.py)
        self.writer = Writer(store, DeadLetters(store.engine), clock, stats, self._abort)
        self._last_take = clock.now()
        self._holding: tuple[int, float | None] = (0, None)  # the batch being stored: n, oldest
        self._thread = threading.Thread(target=self._run, name="fieldwatch-worker", daemon=True)

    @property
    def alerts(self) -> dict[str, object]:
        return self.state.alerts  # type: ignore[return-value]

    def swap_engine(self, engine: Engine) -> None:
        """Hand over a reloaded rule set; the worker adopts it between batches (atomic)."""
        self._next_engine = engine

    def _adopt(self) -> None:
        new = self._next_engine
        if new is None:
            return
        self._next_engine = None
        new.set_silences(self._runtime_silences)
        dropped = new.adopt(self.state, self.engine)
        self.engine = new
        self.stats.inc("rules_reloads_total")
        if dropped:
            log.info("rule reload dropped %d alerts of removed or changed rules", dropped)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Store what is queued, retrying a failing store, for up to `timeout` seconds; then
        give up what is still unstored: it is never acknowledged, so the broker redelivers it
        to the next start (counted in lost_messages_total where the transport cannot)."""
        self._stop.set()
        if self._thread.ident is not None:  # started
            self._thread.join(timeout)
        self._abort.set()
        if self._thread.ident is not None:
            self._thread.join(5.0)
        left = self.source.qsize()
        if left:
            log.warning("stopping with %d messages still queued, unstored and unacknowledged "
                        "(the broker redelivers them)", left)

    def _take(self) -> list[Received]:
        """Group commit: whatever queued while the last batch was written goes in the next one,
        so an idle collector writes at once and a busy one writes big batches by itself."""
        self._last_take = self.clock.now()
        try:
            items = [self.source.get(timeout=0.2)]
        except queue.Empty:
            return []
        self.stats.observe("batch_queue_depth", self.source.qsize() + 1)
        deadline = time.monotonic() + self.batch_wait
        while len(items) < self.batch_max:
            try:
                items.append(self.source.get_nowait())
            except queue.Empty:
                if time.monotonic() >= deadline or self._stop.is_set():
                    break
                time.sleep(0.001)
        return items

    def _run(self) -> None:
        while True:
            items = self._take()
            self._adopt()
            if items:
                started = time.monotonic()
                self.process(items)
                self.stats.observe("batch_seconds", time.monotonic() - started)
                self.stats.observe("batch_messages", len(items))
                self.trimmer.stored(len(items), self.source.qsize() == 0)
            elif self.admit is not None:
                with self.batch_lock:  # let go of devices whose partition moved, in time
                    self.admit([])
            now = self.clock.now()
            if now - self._last_tick >= self.tick_interval:
                self.tick(now)
            if (not items and self._stop.is_set()) or self._abort.is_set():
                return

    def refresh_silences(self, now: float) -> None:
        if self.silences is None:
            return
        self._last_silences = now
        try:
            self._runtime_silences = self.silences.current(now)
            self.engine.set_silences(self._runtime_silences)
        except Exception as exc:  # noqa: BLE001 - keep the silences we had; say so and count it
            self.stats.inc("silence_refresh_errors_total")
            log_failure(log, exc, "could not read silences; keeping the previous ones")

    def tick(self, now: float) -> None:
        """Time-driven rule checks (absence, offline, silences ending) at collector time."""
        self._last_tick = now
        if now - self._last_silences >= self.silence_refresh:
            self.refresh_silences(now)
        connected = self.connected() if self.connected is not None else None
        changes, muted = split_muted(plan(self.engine.tick(self.state, now, connected)))
        if changes or muted:
            self._write(BatchWrite(changes=changes), muted)

    def process(self, items: Sequence[Received]) -> None:
        with self.batch_lock:
            if self.admit is not None:
                items = self.admit(items)
            if items:
                self._process(items)

    def _process(self, items: Sequence[Received]) -> None:
        fence = None if self.on_fenced is None else self._fence(items)
        batch, muted = prepare_all(items, self.engine, self.state, self.sequences,
                                   self.recorder)
        batch.fence = fence
        self._holding = (len(items), min((i.received_at for i in items), default=None))
        try:
            written = self._write(batch, muted, items)
        except Fenced as exc:
            self.stats.inc("fenced_batches_total")
            log.warning("a batch of %d messages was not stored: %s; letting their partitions "
                        "go (the broker redelivers them)", len(items), exc)
            assert self.on_fenced is not None
            self.on_fenced(items)
            return
        finally:
            self._holding = (0, None)
        gone = set(written.dead) | set(written.lost)
        stored = [item for i, item in enumerate(items) if i not in gone]
        unstored = set(written.lost) | set(written.unrecorded)
        self._ack([item for i, item in enumerate(items) if i not in unstored])
        self.stats.inc("stored_total", n=len(stored))
        self.stats.inc("samples_total", n=sum(len(i.message.samples) for i in stored
                                              if isinstance(i.message, wire.Metrics)))
        self._count_history(batch, written)
        lost = [u for u in written.lost if u < len(items)]
        if lost:
            self.stats.inc("lost_messages_total", n=len(lost))
            log.error("stopping with %d messages of a batch unstored; left unacknowledged, so "
                      "the broker redelivers them", len(lost))
        self._forget_sequences({(items[u].message.site, items[u].message.device)
                                for u in written.dead if u < len(items)
                                and isinstance(items[u].message, wire.Metrics)})

    def _fence(self, items: Sequence[Received]) -> dict[tuple[str, str], int | None]:
        """Each device's last stored seq as this worker believes it, before this batch."""
        fence: dict[tuple[str, str], int | None] = {}
        for item in items:
            key = (item.message.site, item.message.device)
            if key not in fence:
                seq = self.sequences.get(key)
                fence[key] = None if seq is None else seq.last
        return fence

    def _count_history(self, batch: BatchWrite, written: Written) -> None:
        kept = batch.samples
        if kept is None:
            return
        gone = set(written.dead) | set(written.lost)
        self.stats.inc("history_samples_total", n=sum(len(r[4]) // 8 for r in kept.rows
                                                      if r[0] not in gone)
                       if gone else kept.samples)
        for reason, n in kept.dropped.items():
            self.stats.inc("history_samples_dropped_total", reason, n=n)
        if gone and self.recorder is not None:
            self.recorder.forget_marks()  # a set-aside row may have carried a bucket's mark

    def _ack(self, items: Sequence[Received]) -> None:
        """Tell the transport these are durably stored (committed, or set aside as dead
        letters): only now may the broker forget them. A failed ack costs a redelivery, which
        the sequence accounting drops, so it is counted and logged, never raised."""
        for item in items:
            if item.ack is None:
                continue
            try:
                item.ack()
            except Exception:  # noqa: BLE001 - the message is stored; the broker redelivers it
                self.stats.inc("ack_errors_total")
                if self._ack_log.due() is not None:
                    log.warning("could not acknowledge a stored message (it will be "
                                "redelivered; counted in ack_errors_total)", exc_info=True)

    def _forget_sequences(self, keys: set[tuple[str, str]]) -> None:
        """Undo what set-aside metrics did to their devices' sequence accounting (a seq of
        2**63 would make every later message a duplicate): back to what the store holds."""
        if not keys:
            return
        try:
            stored = self.store.sequence_states(keys)
        except Exception:  # noqa: BLE001 - e.g. the key itself is unstorable: start afresh
            log.warning("could not reread the sequence state of %d devices; starting it afresh",
                        len(keys), exc_info=True)
            stored = {}
        for key in keys:
            if key in stored:
                self.sequences[key] = stored[key]
            else:
                self.sequences.pop(key, None)

    def _write(self, batch: BatchWrite, muted: list[TicketChange],
               items: Sequence[Received] = ()) -> Written:
        written = self.writer.write(batch, BatchParts(batch, items))
        opened = written.opened
        if opened:
            self.stats.inc("tickets_opened_total", n=len(opened))
            log.info("opened tickets %s", opened)
            if self.on_opened is not None:
                self.on_opened(opened)
        if muted and self.silences is not None and not written.lost:
            try:
                self.stats.inc("muted_alerts_total", n=self.silences.record_muted(muted))
            except Exception as exc:  # noqa: BLE001 - the record is secondary to the tickets
                self.stats.inc("muted_record_errors_total")
                log_failure(log, exc, "could not record %d muted alerts", len(muted))
        return written

    # -- what /healthz reads (store/health.py) ------------------------------------------------

    def snapshot(self, now: float) -> Observed:
        """The worker's state as health.assess reads it; safe from any thread."""
        n, since = self._holding
        oldest = getattr(self.source, "oldest", None)  # FairQueue: still queued counts too
        queued = oldest() if oldest is not None else None
        if queued is not None:
            since = queued if since is None else min(since, queued)
        failing = self.writer.failing_since
        return Observed(
            started=self._thread.ident is not None, worker_alive=self._thread.is_alive(),
            queue_depth=self.source.qsize(), queue_max=getattr(self.source, "maxsize", 0),
            holding=n, oldest_unstored_age=0.0 if since is None else max(0.0, now - since),
            since_last_take=max(0.0, now - self._last_take),
            retrying_for=None if failing is None else max(0.0, now - failing),
            store_error=self.writer.last_error if failing is not None else "")

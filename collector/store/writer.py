"""Storing a batch whatever happens: the store's failures are waited out, the data's set aside.

The worker hands over a prepared batch (rules and sequence accounting have already seen it).
The first attempt writes it whole, in one transaction. If the store refuses it, failures.py
says whose fault it is:

- `store`: keep the batch and retry, backing off to 30 s — but while waiting, poll whether the
  store answers (liveness.py, every `ping_every` s), and once it answers after having not,
  retry at once: a store back from an outage gets its batch within about a second. Holding
  the batch stops the queue draining, which backs up to the broker (QoS 1, acknowledged only
  after commit): data waits, nothing is lost. `failing_since` and `last_error` say so to
  /healthz meanwhile.
- `data`: split the batch in halves and write each, left first (a ticket's changes keep their
  order), recursively. A single unit (one message, or one ticket change) that still fails with
  a data error goes to the dead-letter table; the others are stored. One bad message among n
  costs about 2·log2(n) extra transactions.
- `unknown`: retried like `store`; from the `PROBE_AFTER`th failure in a row, a known-good write
  (`Store.probe`, rolled back) decides: it works, so the rows are at fault and are split.

A split part can meet a `store` failure too (the database went away meanwhile): it is retried
like a whole batch, never set aside.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol, TypeVar

from fieldwatch.collector.store import liveness
from fieldwatch.collector.store.deadletter import DeadLetters
from fieldwatch.collector.store.failures import PROBE_AFTER, classify, describe
from fieldwatch.collector.store.store import BatchWrite, Fenced, Store
from fieldwatch.collector.telemetry.stats import Stats

from fieldwatch.clock import Clock

log = logging.getLogger(__name__)

R = TypeVar("R")


class Parts(Protocol):
    """A batch as units the writer may split (pipeline.BatchParts)."""

    def __len__(self) -> int: ...

    def build(self, units: Sequence[int]) -> BatchWrite: ...

    def letter(self, unit: int, exc: BaseException, now: float) -> dict[str, Any]: ...


@dataclass
class Written:
    opened: list[int] = field(default_factory=list)  # tickets opened
    dead: list[int] = field(default_factory=list)  # units set aside in the dead-letter table
    lost: list[int] = field(default_factory=list)  # units left unstored: stop was requested
    # dead units whose letter was not recorded either (stopping with the store down): only
    # the log holds them, so the transport must not be told they arrived (redelivered)
    unrecorded: list[int] = field(default_factory=list)


class _Stopped(Exception):
    pass


class Writer:
    def __init__(self, store: Store, letters: DeadLetters, clock: Clock, stats: Stats,
                 stop: threading.Event, first_delay: float = 0.5,
                 max_delay: float = 30.0, ping_every: float = 1.0,
                 answers: Callable[[], bool] | None = None) -> None:
        self.store, self.letters, self.clock, self.stats = store, letters, clock, stats
        self.stop, self.first_delay, self.max_delay = stop, first_delay, max_delay
        self.ping_every = ping_every
        self.answers = answers or partial(liveness.answers, store.engine)
        self._seen_down = False  # the store did not answer during this outage
        self.failing_since: float | None = None  # collector time the store began failing
        self.last_error = ""
        self._last_log = -float("inf")

    def write(self, batch: BatchWrite, parts: Parts) -> Written:
        """Store `batch`; `parts` is the same batch, splittable, for when it is refused."""
        out = Written()
        try:
            opened, exc = self._attempt(lambda: self.store.write(batch, self.clock.now()))
        except _Stopped:
            out.lost = list(range(len(parts)))
            return out
        if exc is None:
            out.opened = opened or []
            return out
        self.stats.inc("store_batches_split_total")
        units = list(range(len(parts)))
        letters: list[dict[str, Any]] = []
        first_exc: BaseException = exc
        todo = _halves(units) if len(units) > 1 else []
        if len(units) == 1:  # nothing to split: it failed alone already
            self._set_aside(parts, units[0], exc, letters, out)
        while todo:
            part = todo.pop()
            try:
                opened, exc = self._attempt(partial(self._write_part, parts, part))
            except _Stopped:
                out.lost = [u for p in (part, *todo) for u in p]
                break
            if exc is None:
                out.opened += opened or []
            elif len(part) == 1:
                self._set_aside(parts, part[0], exc, letters, out)
            else:
                todo += _halves(part)
        if not self._record(letters, len(units), first_exc):
            out.unrecorded = list(out.dead)
        return out

    def _write_part(self, parts: Parts, units: list[int]) -> list[int]:
        return self.store.write(parts.build(units), self.clock.now())

    def _set_aside(self, parts: Parts, unit: int, exc: BaseException,
                   letters: list[dict[str, Any]], out: Written) -> None:
        letters.append(parts.letter(unit, exc, self.clock.now()))
        out.dead.append(unit)
        self.stats.inc("dead_letter_total", type(exc).__name__)

    def _record(self, letters: list[dict[str, Any]], n: int, exc: BaseException) -> bool:
        """Record the letters; False when stopped before they could be (the store down)."""
        if not letters:
            return True
        now = time.monotonic()
        if now - self._last_log > 5:  # a stream of bad data must not flood the log
            self._last_log = now
            log.error("set aside %d of %d units of a batch the store refused (%s); see "
                      "`fieldwatch deadletter list` (counted in dead_letter_total)",
                      len(letters), n, describe(exc))
        stopped = False
        try:
            _, refused = self._attempt(lambda: self.letters.record(letters))
            recorded = refused is None
        except _Stopped:
            recorded, stopped = False, True
        if not recorded:
            # refused, or stopping while the store is down: the last place left is the log
            self.stats.inc("dead_letter_errors_total", n=len(letters))
            for letter in letters:
                log.error("dead letter not recorded: %s %s/%s %r", letter["kind"],
                          letter["site"], letter["device"], letter["payload"][:2000])
        return not stopped

    def _attempt(self, write: Callable[[], R]) -> tuple[R | None, BaseException | None]:
        """(result, None) once `write` works; (None, exc) for a failure of the data; retries
        failures of the store until then. Raises _Stopped if told to stop meanwhile."""
        delay, failures = self.first_delay, 0
        while True:
            try:
                result = write()
            except Fenced:
                raise  # not the store's fault nor the data's: the worker lets the batch go
            except Exception as exc:  # noqa: BLE001 - classified below: retried or split
                self.stats.inc("store_errors_total")
                failures += 1
                kind = classify(exc)
                if kind == "data" or (kind == "unknown" and failures >= PROBE_AFTER
                                      and self._store_works()):
                    return None, exc
                self._failing(exc, delay, with_trace=kind == "unknown")
                try:
                    self._wait(delay)
                except _Stopped:
                    raise _Stopped from exc
                delay = min(delay * 2, self.max_delay)
                continue
            if self.failing_since is not None:
                log.info("store works again after %.0fs", self.clock.now() - self.failing_since)
            self.failing_since, self.last_error, self._seen_down = None, "", False
            return result, None

    def _wait(self, delay: float) -> None:
        """Sleep `delay` before the next retry, cut short once the store answers after having
        not answered in this outage. Raises _Stopped when told to stop meanwhile."""
        deadline = time.monotonic() + delay
        while (left := deadline - time.monotonic()) > 0:
            if self.stop.wait(min(left, self.ping_every)):
                raise _Stopped
            if not self.answers():
                self._seen_down = True
            elif self._seen_down:
                self._seen_down = False
                log.info("the store answers again; retrying now")
                return

    def _failing(self, exc: BaseException, delay: float, with_trace: bool) -> None:
        if self.failing_since is None:
            self.failing_since = self.clock.now()
        self.last_error = describe(exc)
        log.warning("could not store a batch, keeping it and retrying in %.1fs: %s", delay,
                    self.last_error, exc_info=exc if with_trace else None)

    def _store_works(self) -> bool:
        try:
            self.store.probe()
        except Exception as exc:  # noqa: BLE001 - the answer itself: the store is broken
            log.warning("store probe failed too, so the store is at fault: %s", describe(exc))
            return False
        return True


def _halves(units: list[int]) -> list[list[int]]:
    """[right, left]: popped from the end, the left half is written first."""
    mid = len(units) // 2
    return [units[mid:], units[:mid]]

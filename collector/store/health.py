"""Is data flowing into the store? ok / degraded / failing, from what the worker and ingest show.

Pure: `assess(observed, limits)`; the worker's `observe(now)` and the collector fill `Observed`.
`failing` (HTTP 503 at /healthz) means data is not being stored and waiting will not fix it
soon — the worker thread is gone, consumption has stalled with messages queued, or a batch has
failed to store for longer than `stuck_after` — so a load balancer or watchdog should act.
`degraded` (still 200) means it works but someone should look: the store is failing and being
retried, messages wait long or the queue is nearly full, the broker is unreachable, or the
collector is still starting.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

State = Literal["ok", "degraded", "failing"]


@dataclass(frozen=True)
class Observed:
    started: bool = True  # the worker thread was started
    worker_alive: bool = True  # ... and still runs
    mqtt_connected: bool = True
    queue_depth: int = 0
    queue_max: int = 0  # 0: unbounded
    holding: int = 0  # messages taken from the queue, not yet stored (the batch in hand)
    oldest_unstored_age: float = 0.0  # seconds since the oldest of those, or of the queued, came
    since_last_take: float = 0.0  # seconds since the worker last asked the queue for more
    retrying_for: float | None = None  # seconds the store has been failing; None: it works
    store_error: str = ""  # the last failure, while retrying


@dataclass(frozen=True)
class Limits:
    stalled_after: float = 60.0  # messages queued, none taken this long: failing
    stuck_after: float = 120.0  # the store failing this long: failing (before: degraded)
    lag_degraded: float = 60.0  # the oldest unstored message this old: degraded
    queue_degraded: float = 0.8  # the queue this full (fraction of queue_max): degraded


@dataclass(frozen=True)
class Health:
    state: State
    reasons: tuple[str, ...] = ()

    @property
    def http_status(self) -> int:
        return 503 if self.state == "failing" else 200

    def as_json(self) -> dict[str, Any]:
        return {"status": self.state, "reasons": list(self.reasons)}


def assess(o: Observed, limits: Limits = Limits()) -> Health:
    failing: list[str] = []
    degraded: list[str] = []
    if not o.started:
        degraded.append("starting: the store worker has not started yet")
    elif not o.worker_alive:
        failing.append("the store worker thread is not running")
    if o.retrying_for is not None:
        what = f"a batch of {o.holding} messages" if o.holding else "ticket changes"
        text = (f"the store has failed for {o.retrying_for:.0f}s, retrying {what} "
                f"({o.store_error or 'no detail'}); {o.queue_depth} queued")
        (failing if o.retrying_for >= limits.stuck_after else degraded).append(text)
    if o.queue_depth > 0 and o.since_last_take >= limits.stalled_after:
        failing.append(f"consumption stalled: no message taken for {o.since_last_take:.0f}s "
                       f"with {o.queue_depth} queued")
    if o.oldest_unstored_age >= limits.lag_degraded:
        degraded.append(f"the oldest unstored message is {o.oldest_unstored_age:.0f}s old")
    if o.queue_max > 0 and o.queue_depth >= limits.queue_degraded * o.queue_max:
        degraded.append(f"the queue is {100 * o.queue_depth / o.queue_max:.0f}% full "
                        f"({o.queue_depth} of {o.queue_max})")
    if not o.mqtt_connected:
        degraded.append("not connected to the MQTT broker")
    if failing:
        return Health("failing", tuple(failing + degraded))
    if degraded:
        return Health("degraded", tuple(degraded))
    return Health("ok")

"""The agent's reconnect backoff: capped low, with jitter (issue 18).

paho doubles its reconnect wait from `min_delay` to `max_delay` with no jitter; with the old
1 s → 60 s, an agent started while its broker was down waited up to a minute after the broker
came back (28 s measured), and a fleet that lost the same broker came back in lockstep. Here
the wait before attempt n+1 is drawn from [d/2, d] with d = min(CAP, FIRST · 2^n): a broker
back from an outage is found within CAP seconds, and agents spread their reconnects.

paho has no jitter hook, so `ReconnectBackoff` drives its own: paho calls `on_pre_connect`
before each attempt, and there the wait to use should that attempt fail is set with
`reconnect_delay_set(d, d)` (which also restarts paho's doubling, so d is what it waits).
`connected()` starts the series again once a connection is made.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import paho.mqtt.client as mqtt

FIRST = 0.5  # seconds: the wait after the first failed attempt is 0.25-0.5 s
CAP = 10.0  # seconds: never wait longer than this between attempts


def delay(attempt: int, first: float = FIRST, cap: float = CAP,
          rand: Callable[[], float] = random.random) -> float:
    """The wait after failed attempt number `attempt` (0-based): half fixed, half random."""
    d = min(cap, first * 2 ** min(attempt, 32))
    return d / 2 + rand() * d / 2


class ReconnectBackoff:
    def __init__(self, client: mqtt.Client, first: float = FIRST, cap: float = CAP,
                 rand: Callable[[], float] = random.random) -> None:
        self.client, self.first, self.cap, self.rand = client, first, cap, rand
        self.attempt = 0
        self.waits: list[float] = []  # the waits set, latest last (kept short: diagnostics)
        client.on_pre_connect = self.before_attempt  # a publisher with its own hook calls it
        self._set(0)

    def before_attempt(self, client: mqtt.Client, userdata: object) -> None:
        self._set(self.attempt)
        self.attempt += 1

    def connected(self) -> None:
        """A connection was made: the next outage starts from the first, short wait."""
        self.attempt = 0
        self._set(0)

    def _set(self, attempt: int) -> None:
        wait = delay(attempt, self.first, self.cap, self.rand)
        self.waits = [*self.waits[-9:], wait]
        # paho types the delays as int but computes with them as float seconds
        self.client.reconnect_delay_set(min_delay=wait, max_delay=wait)  # type: ignore[arg-type]

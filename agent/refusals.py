"""Messages the broker refused, and when to offer them again.

Under MQTT 5 a broker answers a publish it will not take with a PUBACK reason code ≥ 0x80
(Mosquitto: 0x87 when its ACL forbids the topic). Such a message was not delivered, so it stays
in the outage buffer; this keeps the account. It is offered again
- at once for every message of a device refused as not authorized, as soon as the broker takes
  any message of that device (its ACL was fixed and reloaded);
- every `retry` seconds, the oldest refused message of each device, as a probe (a device
  that sends nothing new, or a refusal for another reason);
- after a restart, when the buffer is sent from its oldest message.
Every refusal counts, repeats included, so the count keeps rising while the cause lasts.

Pure bookkeeping for the sender thread: time comes in as arguments; only `totals` is read from
another thread (the poll cycle), under a lock.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable, Iterator

NOT_AUTHORIZED = 0x87
PACKET_TOO_LARGE = 0x95


def device_key(topic: str) -> str:
    """`site/device` of a fieldwatch topic (fieldwatch/v1/<site>/<device>/...)."""
    parts = topic.split("/", 4)
    return "/".join(parts[2:4]) if len(parts) >= 4 else topic


class Refusals:
    def __init__(self, retry: float = 300.0, log_every: float = 300.0) -> None:
        self.retry, self.log_every = retry, log_every
        self.rows: dict[int, tuple[str, int]] = {}  # buffer row id -> (site/device, code)
        self._by_key: dict[str, dict[int, int]] = {}  # site/device -> {row id: code}
        self._held: frozenset[int] | None = frozenset()  # cache of held()
        self._resend: deque[int] = deque()  # rows to offer again, oldest scheduled first
        self._due: set[str] = set()  # devices whose refused rows are all scheduled
        self._probed = 0.0
        self._totals: dict[str, int] = {}
        self._lock = threading.Lock()
        self._logged: float | None = None  # when the last summary went out
        self._unlogged = 0
        self._whom: set[str] = set()

    def __len__(self) -> int:
        return len(self.rows)

    def __contains__(self, row: object) -> bool:
        return row in self.rows

    def held(self) -> frozenset[int]:
        """Rows kept for another try: no longer in MQTT's hands (Outbox.released)."""
        if self._held is None:
            self._held = frozenset(self.rows)
        return self._held

    def _forget(self, row: int) -> bool:
        entry = self.rows.pop(row, None)
        if entry is None:
            return False
        rows = self._by_key[entry[0]]
        del rows[row]
        if not rows:
            del self._by_key[entry[0]]
        self._held = None
        return True

    def totals(self) -> dict[str, int]:
        """Refusals since start, per `site/device`."""
        with self._lock:
            return dict(self._totals)

    def refuse(self, row: int, topic: str, code: int, why: str, now: float) -> str | None:
        """Note a refusal; returns a line to log when one is due (the first at once, then a
        summary at most every `log_every` seconds)."""
        key = device_key(topic)
        if not self.rows:
            self._probed = now  # the first probe comes `retry` from now
        self.rows[row] = (key, code)
        self._by_key.setdefault(key, {})[row] = code
        self._held = None
        self._due.discard(key)
        with self._lock:
            self._totals[key] = self._totals.get(key, 0) + 1
        self._unlogged += 1
        if len(self._whom) < 5:
            self._whom.add(key)
        if self._logged is not None and now - self._logged < self.log_every:
            return None
        line = (f"the broker refused {self._unlogged} publish(es) of "
                f"{', '.join(sorted(self._whom))}, the latest to {topic} ({why}); kept in the "
                f"buffer for another try")
        if code == NOT_AUTHORIZED:
            line += (" once the broker takes that device's messages: an ACL without this topic "
                     "for this agent's user? (`fieldwatch agent acl`, docs/operations.md; an "
                     "enrolled device: `fieldwatch devices rotate --targets`, docs/enroll.md)")
        self._logged, self._unlogged, self._whom = now, 0, set()
        return line

    def taken(self, keys: Iterable[str]) -> None:
        """The broker took messages of these devices: offer again what it refused them as
        not authorized."""
        for key in set(keys) - self._due:
            rows = [r for r, code in self._by_key.get(key, {}).items()
                    if code == NOT_AUTHORIZED]
            if rows:
                self._due.add(key)
                self._resend.extend(rows)

    def due(self, now: float) -> Iterator[int]:
        """Rows to offer again now, each forgotten here as it is yielded (a new refusal notes
        it again). Starts a probe round when `retry` has passed."""
        if self.rows and now - self._probed >= self.retry:
            self._probed = now
            self._resend.extend(sorted(min(rows) for rows in self._by_key.values()))
        while self._resend:
            row = self._resend.popleft()
            if self._forget(row):  # else offered already, by an earlier entry
                yield row

    def pending(self) -> bool:
        """Rows may be scheduled to be offered again (or stale entries, skipped by `due`)."""
        return bool(self._resend)

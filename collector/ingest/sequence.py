"""Per-device sequence accounting: drop duplicates, count gaps and backfills.

Agents number their metrics messages 1, 2, 3... per device and replay buffered ones after an
outage, so the collector sees redeliveries (QoS 1, agent restarts before an ack) and late
arrivals. `observe` classifies each sequence number:

- `new`: above everything seen; any numbers skipped become missing ranges;
- `backfill`: fills a missing range (it arrived late, e.g. replayed from the agent's buffer);
- `duplicate`: seen before, drop it;
- `reset`: seq 1 with a newer timestamp than the last message, i.e. the agent lost its state
  and started counting again.

"N missing, M backfilled" per device is `missing` and `backfilled`. Pure: no I/O, no clock.
Counts are in messages (one per device and poll cycle).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Any, Literal

MAX_RANGES = 1000  # a device with more separate gaps forgets the oldest (they stay counted)

Verdict = Literal["new", "backfill", "duplicate", "reset"]


@dataclass
class SeqState:
    last: int | None = None
    last_ts: float | None = None
    gaps: list[list[int]] = field(default_factory=list)  # sorted inclusive [lo, hi] ranges
    missing: int = 0  # outstanding: inside gaps or forgotten
    backfilled: int = 0
    duplicates: int = 0

    def as_columns(self) -> dict[str, Any]:
        return {"seq_missing": self.missing, "seq_backfilled": self.backfilled,
                "seq_duplicates": self.duplicates, "seq_gaps": self.gaps}

    @classmethod
    def from_columns(cls, row: dict[str, Any]) -> SeqState:
        return cls(last=row.get("last_seq"), last_ts=row.get("last_seen"),
                   gaps=[list(g) for g in row.get("seq_gaps") or []],
                   missing=row.get("seq_missing") or 0,
                   backfilled=row.get("seq_backfilled") or 0,
                   duplicates=row.get("seq_duplicates") or 0)


def observe(state: SeqState, seq: int, ts: float) -> Verdict:
    """Classify `seq` (sent at `ts`) and update `state` in place."""
    if state.last is None or seq > state.last:
        if state.last is not None and seq > state.last + 1:
            state.gaps.append([state.last + 1, seq - 1])
            state.missing += seq - state.last - 1
            if len(state.gaps) > MAX_RANGES:
                del state.gaps[0]
        state.last, state.last_ts = seq, ts
        return "new"
    i = bisect.bisect_right(state.gaps, [seq, float("inf")]) - 1
    if i >= 0 and state.gaps[i][0] <= seq <= state.gaps[i][1]:
        lo, hi = state.gaps[i]
        state.gaps[i:i + 1] = [r for r in ([lo, seq - 1], [seq + 1, hi]) if r[0] <= r[1]]
        state.missing -= 1
        state.backfilled += 1
        return "backfill"
    if seq == 1 and state.last_ts is not None and ts > state.last_ts:
        state.last, state.last_ts, state.gaps = 1, ts, []
        return "reset"
    state.duplicates += 1
    return "duplicate"

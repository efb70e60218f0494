"""Publishes the broker refused, as each device's agent reports them (agent.publish_refused_total
in its metrics, docs/operations.md), for the device listing of the CLI and the API.

Read from the device's newest stored metrics message (by sequence number, along the
(site, device, seq) index): no column, no migration, and it stays what the agent said last.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from fieldwatch.collector.store.schema import messages

from fieldwatch import wire
from fieldwatch.errors import WireFormatError

SAMPLE = "agent.publish_refused_total"


def refused_of(payload: bytes | None) -> int | None:
    """The refusals a metrics payload reports; None when it reports none (an agent speaking
    MQTT 3.1.1 cannot tell, an older agent does not say)."""
    try:
        msg = wire.decode(payload) if payload is not None else None
    except WireFormatError:
        return None
    if not isinstance(msg, wire.Metrics):
        return None
    values = [s.value for s in msg.samples if s.name == SAMPLE]
    return int(sum(values)) if values else None


def add_refused(engine: sa.Engine, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Set `refused` on each device row (`site`, `device`); returns the rows."""
    with engine.connect() as conn:
        for row in rows:
            payload = conn.execute(sa.select(messages.c.payload).where(
                messages.c.site == row["site"], messages.c.device == row["device"],
                messages.c.kind == "metrics", messages.c.seq.is_not(None))
                .order_by(messages.c.seq.desc()).limit(1)).scalar()
            row["refused"] = refused_of(payload)
    return rows

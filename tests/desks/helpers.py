"""Ticket changes written through the real store, for outbox tests."""

from __future__ import annotations

from typing import Any

from fieldwatch.collector.store.store import BatchWrite, Store
from fieldwatch.collector.tickets.alerts import TicketChange


def alert(kind: str, fp: str, ts: float, **kw: Any) -> TicketChange:
    return TicketChange(kind=kind, fingerprint=fp, rule="pump_hot",  # type: ignore[arg-type]
                        site="plant", device=f"dev-{fp}", labels={}, severity="P1",
                        title=f"Pump {fp} hot", description="too hot", team="hardware",
                        value=90.0, first_ts=ts, last_ts=ts, **kw)


def fire(store: Store, fp: str, ts: float) -> list[int]:
    return store.write(BatchWrite(changes=[alert("fire", fp, ts)]), ts)


def clear(store: Store, fp: str, ts: float) -> None:
    store.write(BatchWrite(changes=[alert("resolve", fp, ts)]), ts)

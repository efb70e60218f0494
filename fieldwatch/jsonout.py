"""The stable `--json` shapes of tickets and devices (docs/operations.md documents them)."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any


def iso(ts: float | None) -> str | None:
    """Epoch seconds → RFC 3339 UTC with milliseconds, or None — also for a time no date can
    show (NaN, 1e300: a stored row must not break every listing that contains it)."""
    if ts is None:
        return None
    try:
        return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace(
            "+00:00", "Z")
    except (OverflowError, ValueError, OSError):
        return None


def finite(x: float | None) -> float | None:
    """x, or None for NaN and infinities (JSON has no such numbers; strict encoders refuse)."""
    return x if x is None or math.isfinite(x) else None


TICKET_FIELDS = ("id", "rule", "site", "device", "labels", "severity", "state", "title",
                 "description", "team", "fingerprint", "occurrences", "last_value",
                 # service desk (issue 6): added, never removed
                 "priority", "source", "customer", "device_type", "assignee", "close_reason",
                 "reopen_count", "recurrences", "recurrence_of", "resolution", "satisfaction")
TICKET_TIMES = ("opened_at", "updated_at", "resolved_at", "last_seen", "acknowledged_at",
                "closed_at", "waiting_since")


def ticket_json(row: dict[str, Any]) -> dict[str, Any]:
    out = {k: row.get(k) for k in TICKET_FIELDS}
    out["last_value"] = finite(out["last_value"])
    out.update({k: iso(row.get(k)) for k in TICKET_TIMES})
    out["priority"] = out["priority"] or out["severity"]
    out["waiting"] = row.get("waiting_since") is not None
    return out


def event_json(row: dict[str, Any]) -> dict[str, Any]:
    return {"id": row.get("id"), "at": iso(row.get("at")), "actor": row.get("actor"),
            "kind": row.get("kind"), "reason": row.get("reason"), "data": row.get("data")}


DEVICE_FIELDS = ("site", "device", "status", "status_cause", "last_seq", "messages_total",
                 "agent", "inventory")
DEVICE_TIMES = ("first_seen", "last_seen", "status_at")


def device_confirmed(row: dict[str, Any]) -> bool:
    """Sent metrics or inventory to this collector, not only a status (a retained `offline`
    left on the broker by someone else): only confirmed devices open presence tickets."""
    return row.get("last_seq") is not None or row.get("inventory") is not None


def device_json(row: dict[str, Any]) -> dict[str, Any]:
    out = {k: row.get(k) for k in DEVICE_FIELDS}
    out["confirmed"] = device_confirmed(row)
    # sequence accounting: metrics messages missing now, arrived late, dropped as repeats
    out.update({k: row.get(f"seq_{k}") or 0 for k in ("missing", "backfilled", "duplicates")})
    out.update({k: iso(row.get(k)) for k in DEVICE_TIMES})
    return out

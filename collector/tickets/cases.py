"""Resolution records and the case library: a new ticket shows the past fixes most like it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Resolution(BaseModel):
    """The structured note a resolution takes (what the KPIs and the case library read)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cause: str = Field(min_length=1, max_length=200, description="root cause, short and reusable")
    fix: str = Field(min_length=1, max_length=4000, description="what was done")
    parts: list[str] = Field(default=[], max_length=50, description="parts used")
    minutes: float = Field(default=0, ge=0, le=100_000, description="time spent")
    mode: Literal["remote", "on_site"] = "remote"


def similarity(ticket: Mapping[str, Any], past: Mapping[str, Any]) -> float:
    """Same rule counts most, then device type, shared labels, same device."""
    score = 0.0
    if ticket.get("rule") and ticket.get("rule") == past.get("rule"):
        score += 3.0
    if ticket.get("device_type") and ticket.get("device_type") == past.get("device_type"):
        score += 2.0
    a = set((ticket.get("labels") or {}).items())
    b = set((past.get("labels") or {}).items())
    if a or b:
        score += 2.0 * len(a & b) / len(a | b)
    if ticket.get("device") == past.get("device") and ticket.get("site") == past.get("site"):
        score += 1.0
    return score


def similar(ticket: Mapping[str, Any], history: Iterable[Mapping[str, Any]],
            limit: int = 3) -> list[dict[str, Any]]:
    """The most similar resolved tickets with a resolution note, best first, newest on ties."""
    scored = [(similarity(ticket, p), p) for p in history
              if p.get("id") != ticket.get("id") and p.get("resolution")]
    scored = [(s, p) for s, p in scored if s >= 3.0]  # at least the same rule or equivalent
    scored.sort(key=lambda sp: (-sp[0], -(sp[1].get("resolved_at") or 0)))
    return [{"id": p["id"], "score": round(s, 2), "title": p.get("title"),
             "device": p.get("device"), "resolution": p.get("resolution")}
            for s, p in scored[:limit]]

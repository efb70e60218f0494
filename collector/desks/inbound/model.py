"""What a desk tells us, whatever its wire format, and the small pure helpers the parsers share.

A parser maps one webhook body to `Inbound` values: the desk's state of its ticket now
(normalised to open / acknowledged / resolved), its assignee, a comment — with the desk's own
time of the change. Deciding what that means for the fieldwatch ticket is `apply`'s job.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from fieldwatch.errors import WireFormatError

State = Literal["open", "acknowledged", "resolved"]
MARKER = re.compile(r"\[fieldwatch:[^\]\s]{1,200}\]")  # model.Change.marker: our own note
TEXT_MAX = 10_000  # a comment as the ticket timeline takes it (tickets/actions.py)


@dataclass(frozen=True)
class Comment:
    id: str  # the desk's id of the comment: applied once, whichever delivery brings it
    text: str


@dataclass(frozen=True)
class Inbound:
    """One change a desk reports about one of its tickets."""

    desk: str
    kind: str  # the desk's own name for the event (webhookEvent, event_type, …)
    at: float  # the desk's time of the change (epoch seconds)
    actor: str  # who made it, at the desk
    external_id: str | None = None  # the desk's id of its ticket (desk_links.external_id)
    references: tuple[str, ...] = ()  # strings that may be fieldwatch's reference (labels, …)
    alias: str | None = None  # another id of the same external ticket (PagerDuty incident id)
    status: State | None = None  # the desk's state of its ticket now; None: not said
    assignee: str | None = None  # the desk's assignee now; None: not said or nobody
    comment: Comment | None = None
    resolution: str = ""  # the desk's words on a resolution, if any


@dataclass(frozen=True)
class Delivery:
    """One webhook request, parsed: its replay key, the time it claims, what it reports."""

    key: str  # the desk's delivery id, or a hash of what identifies the request
    at: float  # the desk's time of the change (refused when older than the replay window)
    changes: tuple[Inbound, ...]


@dataclass(frozen=True)
class Keys:
    """What a desk's requests are verified with."""

    secret: bytes
    username: str = ""  # ServiceNow basic auth


def header(headers: Mapping[str, str], name: str) -> str:
    return (headers.get(name) or "").strip()


def hmac_hex(key: bytes, body: bytes, digest: str = "sha256") -> str:
    return hmac.new(key, body, digest).hexdigest()


def same(given: str, expected: str) -> bool:
    """Constant-time comparison of two ASCII strings (anything else never matches)."""
    try:
        return hmac.compare_digest(given.encode("ascii"), expected.encode("ascii"))
    except UnicodeEncodeError:
        return False


def body_hash(*parts: bytes) -> str:
    """A delivery key for desks that send no delivery id: the same bytes, the same key."""
    h = hashlib.sha256()
    for p in parts:
        h.update(len(p).to_bytes(8, "big"))
        h.update(p)
    return "sha256:" + h.hexdigest()


def load(body: bytes) -> dict[str, Any]:
    """The JSON object of a webhook body; WireFormatError otherwise."""
    try:
        doc = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise WireFormatError("bad_json", str(exc)[:200]) from None
    if not isinstance(doc, dict):
        raise WireFormatError("bad_field", "expected a JSON object")
    return doc


def obj(doc: Mapping[str, Any], key: str, where: str = "") -> dict[str, Any]:
    value = doc.get(key)
    if not isinstance(value, dict):
        raise WireFormatError("bad_field", f"{where}{key}: expected an object")
    return value


def text(value: Any, limit: int = 255) -> str | None:
    """A string or number as a short string; None for anything else or empty."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    out = str(value).strip()
    return out[:limit] if out else None


def timestamp(value: Any, where: str) -> float:
    """Epoch seconds from what desks send: ISO 8601 (`Z`, offsets, fractions), `YYYY-MM-DD
    HH:MM:SS` (UTC, as ServiceNow and GLPI store it), or epoch seconds / milliseconds."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        secs = float(value)
        return secs / 1000.0 if secs > 1e11 else secs
    if isinstance(value, str) and value.strip():
        s = value.strip().replace("Z", "+00:00")
        s = re.sub(r"(\.\d{6})\d+", r"\1", s)  # nanoseconds: Python takes microseconds
        s = re.sub(r"([+-]\d\d)(\d\d)$", r"\1:\2", s)  # Jira's +0000
        try:
            when = datetime.fromisoformat(s)
        except ValueError:
            raise WireFormatError("bad_time", f"{where}: {value[:40]!r} is not a time") from None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return when.timestamp()
    raise WireFormatError("bad_time", f"{where}: expected a time")


def plain(value: Any, html_body: bool = False) -> str:
    """A desk's comment as text: HTML reduced to its words, bounded."""
    s = value if isinstance(value, str) else ""
    if html_body:
        s = re.sub(r"<br\s*/?>|</?(p|div|li|tr)\b[^>]*>", "\n", s, flags=re.I)
        s = html.unescape(re.sub(r"<[^>]*>", "", s))
        s = re.sub(r"\n\s*\n+", "\n", s)
    return s.strip()[:TEXT_MAX]


def ours(comment: str) -> bool:
    """A note fieldwatch wrote (it carries a change's marker): our own change echoed back."""
    return MARKER.search(comment) is not None


def state_of(name: str | None, table: Mapping[str, State]) -> State | None:
    """The desk's state name (case-insensitive) as ours; None for one the table lacks."""
    if name is None:
        return None
    return table.get(name) or {k.casefold(): v for k, v in table.items()}.get(name.casefold())

"""The queue's filters and search, pure: query parameters → validated `Filters`, the rows they
keep (`matches`, the reference the SQL in queries.py must agree with), and links that keep
them (`query_string`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlencode

from fieldwatch.collector.sla.policy import PRIORITIES
from fieldwatch.collector.tickets.lifecycle import OPEN_STATES, STATES

# `open` (default): every state whose fault is not fixed; `all`: every state.
STATE_CHOICES = ("open", *STATES, "all")
MAX_TEXT = 128
MAX_SEARCH = 200
PAGE_SIZE = 50
MAX_PAGE = 10_000


@dataclass(frozen=True)
class Filters:
    site: str | None = None
    team: str | None = None
    priority: str | None = None
    state: str = "open"
    assignee: str | None = None  # "-": nobody assigned
    q: str | None = None  # search: id (#12 or 12), or words (ASCII case-insensitive) anywhere
    #                       in title, device, site, customer, description, assignee
    page: int = 1

    @property
    def states(self) -> tuple[str, ...]:
        """The states kept, in lifecycle order."""
        if self.state == "open":
            return OPEN_STATES
        if self.state == "all":
            return STATES
        return (self.state,)

    @property
    def only_open(self) -> bool:
        """Only unresolved states: the queue is ordered by SLA urgency (else newest first)."""
        return set(self.states) <= set(OPEN_STATES)

    def words(self) -> list[str]:
        """The search's words (each must occur somewhere), without an id search."""
        return [] if self.q is None or self.ticket_id() is not None else self.q.split()

    def ticket_id(self) -> int | None:
        """The ticket id the search names (`#12`, `12`), if it names one."""
        if self.q is None:
            return None
        text = self.q.strip().removeprefix("#")
        return int(text) if text.isascii() and text.isdigit() and len(text) <= 10 else None

    def active(self) -> dict[str, str]:
        """The parameters that differ from the defaults (for links and the filter form)."""
        out = {k: v for k, v in (("site", self.site), ("team", self.team),
                                 ("priority", self.priority), ("assignee", self.assignee),
                                 ("q", self.q)) if v is not None}
        if self.state != "open":
            out["state"] = self.state
        return out


def _text(params: Mapping[str, str], key: str, limit: int, problems: list[str]) -> str | None:
    value = (params.get(key) or "").strip()
    if not value:
        return None
    if len(value) > limit or "\x00" in value:
        problems.append(f"{key}: at most {limit} characters")
        return None
    return value


def parse(params: Mapping[str, str]) -> tuple[Filters, list[str]]:
    """Filters from query parameters, and what was wrong with them (each wrong value is
    dropped and named: a page never fails for a bad filter)."""
    problems: list[str] = []
    prio = _text(params, "priority", 2, problems)
    if prio is not None and prio not in PRIORITIES:
        problems.append(f"priority: one of {', '.join(PRIORITIES)}")
        prio = None
    state = _text(params, "state", 16, problems) or "open"
    if state not in STATE_CHOICES:
        problems.append(f"state: one of {', '.join(STATE_CHOICES)}")
        state = "open"
    page = 1
    raw_page = (params.get("page") or "").strip()
    if raw_page:
        if raw_page.isascii() and raw_page.isdigit() and 1 <= int(raw_page) <= MAX_PAGE:
            page = int(raw_page)
        else:
            problems.append(f"page: a number from 1 to {MAX_PAGE}")
    return Filters(site=_text(params, "site", MAX_TEXT, problems),
                   team=_text(params, "team", MAX_TEXT, problems), priority=prio, state=state,
                   assignee=_text(params, "assignee", MAX_TEXT, problems),
                   q=_text(params, "q", MAX_SEARCH, problems), page=page), problems


SEARCHED = ("title", "device", "site", "customer", "description", "assignee")


def matches(f: Filters, t: Mapping[str, Any]) -> bool:
    """Does ticket row `t` pass the filters? (The SQL in queries.py does the same.)"""
    if t.get("state") not in f.states:
        return False
    prio = t.get("priority") or t.get("severity")
    for want, have in ((f.site, t.get("site")), (f.team, t.get("team")), (f.priority, prio)):
        if want is not None and want != have:
            return False
    if f.assignee is not None and (t.get("assignee") or None) != (
            None if f.assignee == "-" else f.assignee):
        return False
    tid = f.ticket_id()
    if tid is not None:
        return int(t["id"]) == tid
    text = fold(" ".join(str(t.get(k) or "") for k in SEARCHED))
    return all(fold(w) in text for w in f.words())


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def fold(text: str) -> str:
    """Case-folded as the databases' LIKE does everywhere: ASCII letters only (CJK has no
    case; SQLite's lower() leaves other letters alone)."""
    return text.translate(_ASCII_LOWER)


def query_string(f: Filters, **changes: Any) -> str:
    """`?…` for a link to the queue with these filters (page reset unless given)."""
    g = replace(f, **{"page": 1, **changes})
    params = g.active()
    if g.page != 1:
        params["page"] = str(g.page)
    return "?" + urlencode(params) if params else "?"

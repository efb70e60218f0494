"""Resolution records and the case library: a new ticket shows the past fixes most like it.

Ranking (documented in docs/operations.md, "Similar case"): the text of the ticket (title and
description) against each past case's title, description and resolution (cause, fix, parts) —
a TF-IDF cosine over the candidate cases, so words that many cases share count little — plus
the same rule (rule-made tickets only: every manual ticket has rule `manual`, which says nothing)
and the same device type:

    score = 0.7 x text + 0.2 x same rule (x (1 + shared labels) / 2) + 0.1 x same device type

A case scoring below MIN_SCORE is never suggested. Text is compared as words for alphabetic
scripts and as single characters plus character pairs for CJK (Chinese, Japanese, Korean have
no spaces; 风扇噪音 and 风扇异响 share 风, 扇 and 风扇). Words naming the device, its site or its
type are left out of the text: they are the structured part's to count, and "printer" in two
titles does not make a paper jam like a fan noise. The database only bounds the candidates
(the newest resolved tickets); why not FTS5 or pg_trgm: the trigram index finds no two-character
CJK word at all (FTS5), and pg_trgm scores 风扇噪音 against 风扇异响 0.25 but "Fan noise on
printer" against "Paper jam on printer" 0.38 (measured on PostgreSQL 15) — the wrong way round.
"""

from __future__ import annotations

import functools
import math
import re
import unicodedata
from collections import Counter
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


CANDIDATES = 2000  # the newest resolved cases the ranking reads (about 0.1 s on one core)
MIN_SCORE = 0.2  # below this a past case is not suggested (documented in docs/operations.md)
W_TEXT, W_RULE, W_TYPE = 0.7, 0.2, 0.1
MANUAL = "manual"

_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
_TOKEN = re.compile(rf"[{_CJK}]+|[^\W_]+")
_IS_CJK = re.compile(rf"[{_CJK}]")
# function words that say nothing about a fault (English; CJK particles are single characters
# and weigh little by their frequency)
_STOP = frozenset({
    "a", "an", "and", "are", "as", "at", "be", "been", "by", "for", "from", "has", "have", "in",
    "into", "is", "it", "its", "no", "not", "of", "on", "or", "the", "then", "this", "to", "too",
    "was", "were", "with"})


def features(text: str, drop: Iterable[str] = ()) -> Counter[str]:
    """Words (alphabetic scripts) and characters plus character pairs (CJK), case-folded;
    the words of `drop` left out."""
    return Counter(_shared(text, drop))


def _shared(text: str, drop: Iterable[str]) -> Counter[str]:
    """`features`, possibly the cached object itself: read it, never change it."""
    out = _features(text)
    gone = {w for d in drop for w in _words(d)} & out.keys()
    if gone:
        out = Counter({w: n for w, n in out.items() if w not in gone})
    return out


@functools.lru_cache(maxsize=20_000)  # past cases' texts do not change: tokenize each once
def _features(text: str) -> Counter[str]:
    out: Counter[str] = Counter()
    for w in _words(text):
        if _IS_CJK.match(w):
            out.update(w)
            out.update(w[i:i + 2] for i in range(len(w) - 1))
        elif len(w) > 1 and w not in _STOP and not w.isdigit():
            out[w] += 1
    return out


def _words(text: str) -> list[str]:
    return _TOKEN.findall(unicodedata.normalize("NFKC", text or "").casefold())


def _text(t: Mapping[str, Any], with_resolution: bool) -> str:
    parts = [t.get("title") or "", t.get("description") or ""]
    res = t.get("resolution") if with_resolution else None
    if isinstance(res, Mapping):
        parts += [str(res.get("cause") or ""), str(res.get("fix") or ""),
                  " ".join(str(p) for p in res.get("parts") or [])]
    return "\n".join(parts)


def _drop(t: Mapping[str, Any]) -> list[str]:
    return [str(t.get(k) or "") for k in ("device", "site", "device_type")]


def _weights(counts: Counter[str], idf: Mapping[str, float]) -> dict[str, float]:
    return {w: (1.0 + math.log(n)) * idf[w] for w, n in counts.items()}


def _cosine(a: Mapping[str, float], b: Mapping[str, float]) -> float:
    if len(b) < len(a):
        a, b = b, a
    dot = sum(v * b.get(w, 0.0) for w, v in a.items())
    na = math.sqrt(sum(v * v for v in a.values()))
    nb = math.sqrt(sum(v * v for v in b.values()))
    return dot / (na * nb) if dot and na and nb else 0.0


def structure(ticket: Mapping[str, Any], past: Mapping[str, Any]) -> float:
    """The rule and device type part of the score, 0..W_RULE + W_TYPE."""
    score = 0.0
    rule = ticket.get("rule")
    if rule and rule != MANUAL and rule == past.get("rule"):
        a = set((ticket.get("labels") or {}).items())
        b = set((past.get("labels") or {}).items())
        shared = len(a & b) / len(a | b) if a or b else 1.0
        score += W_RULE * (1.0 + shared) / 2.0
    if ticket.get("device_type") and ticket.get("device_type") == past.get("device_type"):
        score += W_TYPE
    return score


def score_cases(ticket: Mapping[str, Any],
                history: Iterable[Mapping[str, Any]]) -> list[tuple[float, Mapping[str, Any]]]:
    """(score, case) for every resolved case with a note other than the ticket itself."""
    cases = [p for p in history if p.get("id") != ticket.get("id") and p.get("resolution")]
    drop = _drop(ticket)
    query = _shared(_text(ticket, False), drop)
    docs = [_shared(_text(p, True), [*drop, *_drop(p)]) for p in cases]
    df: Counter[str] = Counter()
    for d in [query, *docs]:
        df.update(d.keys())
    n = len(docs) + 1
    idf = {w: math.log((1 + n) / (1 + c)) + 1.0 for w, c in df.items()}
    q = _weights(query, idf)
    return [(W_TEXT * _cosine(q, _weights(d, idf)) + structure(ticket, p), p)
            for d, p in zip(docs, cases, strict=True)]


def similar(ticket: Mapping[str, Any], history: Iterable[Mapping[str, Any]],
            limit: int = 3) -> list[dict[str, Any]]:
    """The most similar resolved tickets with a resolution note, best first, newest on ties;
    none scoring below MIN_SCORE."""
    scored = [(s, p) for s, p in score_cases(ticket, history) if s >= MIN_SCORE]
    scored.sort(key=lambda sp: (-sp[0], -(sp[1].get("resolved_at") or 0)))
    return [{"id": p["id"], "score": round(s, 2), "title": p.get("title"),
             "device": p.get("device"), "resolution": p.get("resolution")}
            for s, p in scored[:limit]]

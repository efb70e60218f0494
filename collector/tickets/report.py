"""The monthly summary in Markdown, from the KPI figures. Pure."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def month_bounds(year: int, month: int) -> tuple[float, float]:
    """[first instant, first instant of the next month) in UTC epoch seconds."""
    start = datetime(year, month, 1, tzinfo=UTC)
    end = datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=UTC)
    return start.timestamp(), end.timestamp()


NONE = "—"


def _h(s: float | None) -> str:
    return NONE if s is None else f"{s / 3600:.2f} h"


def _p(r: float | None) -> str:
    return NONE if r is None else f"{100 * r:.1f} %"


def monthly_markdown(k: dict[str, Any], since: float) -> str:
    month = datetime.fromtimestamp(since, UTC).strftime("%B %Y")
    t, sat = k["tickets"], k["satisfaction"]
    lines = [
        f"# Service report — {month}", "",
        f"Tickets opened {k['since']} to {k['until']}.", "",
        "## Volume", "",
        "| opened | acknowledged | resolved | closed | still open | P1 | P2 | P3 |",
        "|---|---|---|---|---|---|---|---|",
        f"| {t['opened']} | {t['acknowledged']} | {t['resolved']} | {t['closed']} | "
        f"{t['open']} | {t['by_priority']['P1']} | {t['by_priority']['P2']} | "
        f"{t['by_priority']['P3']} |", "",
        "## Speed and quality", "",
        f"- Mean time to acknowledge (MTTA): {_h(k['mtta_s'])}",
        f"- Mean time to resolve (MTTR): {_h(k['mttr_s'])}",
        f"- First-time-fix rate: {_p(k['first_time_fix_rate'])}",
        f"- Recurrence rate: {_p(k['recurrence_rate'])}",
        f"- Customer satisfaction: {NONE if sat['mean'] is None else sat['mean']} "
        f"({sat['count']} scores)", "",
        "## SLA compliance", "",
        # one definition with `report kpi` (kpi.py): verdicts as of the report
        f"Clocks as of {k.get('as_of') or k['until']}; pending = still running within target.",
        "",
        "| priority | response met | breached | pending | resolution met | breached | pending |",
        "|---|---|---|---|---|---|---|",
    ]
    for p, c in k["sla"].items():
        r, s = c["response"], c["resolution"]
        lines.append(f"| {p} | {r['met']} ({_p(r['compliance'])}) | {r['breached']} | "
                     f"{r['pending']} | {s['met']} ({_p(s['compliance'])}) | {s['breached']} | "
                     f"{s['pending']} |")
    lines += ["", "## Response time by fault type", "",
              "| rule | tickets | median | p90 | max |", "|---|---|---|---|---|"]
    for rule, r in k["response_by_rule"].items():
        lines.append(f"| {rule} | {r['count']} | {_h(r['p50_s'])} | {_h(r['p90_s'])} | "
                     f"{_h(r['max_s'])} |")
    lines += ["", "## Causes (Pareto)", "", "| cause | tickets | share | cumulative |",
              "|---|---|---|---|"]
    lines += [f"| {c['cause']} | {c['count']} | {c['percent']} % | {c['cumulative_percent']} % |"
              for c in k["causes"]]
    lines += ["", "## Parts used", "", "| part | count |", "|---|---|"]
    lines += [f"| {p} | {n} |" for p, n in k["parts"].items()]
    return "\n".join(lines) + "\n"

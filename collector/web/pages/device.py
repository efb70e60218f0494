"""The device page (`/device?site=S&id=D`): identity and inventory, its tickets, and a chart of
each of its metrics over a chosen range with the alert thresholds of the rules that read it.

Charts read the metric history through the `HistoryBackend` contract only
(collector/history): `series()` with an empty metric name lists every series of the device
(the embedded store and the remote backend both treat "" as "any metric"), then one `query()`
per metric. A backend that fails shows its error where the charts would be; the rest of the
page still works.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

import httpx
import sqlalchemy as sa
from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse
from fieldwatch.collector.history import Query as HistoryQuery
from fieldwatch.collector.history import SeriesKey
from fieldwatch.collector.rules.selectors import Matcher, Selector
from fieldwatch.collector.store.store import device_type_of
from fieldwatch.collector.web import User
from fieldwatch.collector.web.pages import queries, thresholds
from fieldwatch.collector.web.pages.chart import LineChart, SeriesIn, line_chart
from fieldwatch.collector.web.pages.common import Pages, visible, who
from starlette.exceptions import HTTPException
from starlette.requests import Request

from fieldwatch.errors import FieldwatchError

log = logging.getLogger(__name__)

RANGES = {"6h": 6 * 3600, "24h": 86400, "7d": 7 * 86400, "30d": 30 * 86400}
MAX_CHARTS = 16  # metrics charted on one page (the rest are listed, one click away)
MAX_LINES = 8  # series of one metric on one chart (label sets beyond: not drawn, said so)
HISTORY_ERRORS = (FieldwatchError, OSError, ValueError, sa.exc.SQLAlchemyError, httpx.HTTPError)


def time_label(span: float) -> Any:
    """Axis labels: clock times for a day or two, dates beyond (UTC, as every time shown)."""
    fmt = "%H:%M" if span <= 2 * 86400 else "%m-%d"
    return lambda t: datetime.fromtimestamp(t, UTC).strftime(fmt)


def series_label(key: SeriesKey) -> str:
    return ", ".join(f"{k}={v}" for k, v in key.labels) or key.metric


def charts(p: Pages, site: str, name: str, dtype: str, span: float, only: str | None
           ) -> tuple[list[dict[str, Any]], list[str], str | None]:
    """(charts, every metric of the device, the error that stopped them, if any)."""
    if p.history is None:
        return [], [], None
    now = p.now()
    start = now - span
    sel = Selector(device=Matcher("=", name), site=Matcher("=", site))
    try:
        backend = p.history()
        by_metric: dict[str, list[SeriesKey]] = defaultdict(list)
        for key in backend.series(HistoryQuery("", sel, start, now)):
            if key.site == site and key.device == name:
                by_metric[key.metric].append(key)
        metrics = sorted(by_metric)
        shown = [only] if only in by_metric else metrics[:MAX_CHARTS]
        out = []
        for metric in shown:
            found = backend.query(HistoryQuery(metric, sel, start, now))
            mine = [s for s in found if s.key.site == site and s.key.device == name]
            drawn = mine[:MAX_LINES]
            ths = thresholds.for_chart(p.rules(), metric, site, name, dtype,
                                       [dict(s.key.labels) for s in drawn])
            chart: LineChart = line_chart(
                [SeriesIn(series_label(s.key), s.points) for s in drawn], start, now, ths,
                time_label=time_label(span))
            out.append({"metric": metric, "chart": chart, "hidden": len(mine) - len(drawn),
                        "resolution": drawn[0].resolution if drawn else ""})
    except HISTORY_ERRORS as exc:
        log.warning("device page %s/%s: metric history unavailable: %s", site, name, exc)
        return [], [], f"{type(exc).__name__}: {exc}"
    return out, metrics, None


def device_model(p: Pages, user: User, site: str, name: str, rng: str, metric: str | None
                 ) -> dict[str, Any]:
    visible(user, site)
    dev = queries.device(p.engine, site, name)
    rows, total = queries.device_tickets(p.engine, site, name)
    if dev is None and not rows:
        raise HTTPException(404, f"no device {site}/{name} is known")
    inventory = (dev or {}).get("inventory") or (rows[0].get("inventory") if rows else None)
    dtype = device_type_of(inventory) or next((t["device_type"] for t in rows
                                               if t.get("device_type")), "") or ""
    made, metrics, error = charts(p, site, name, dtype, RANGES[rng], metric)
    return {"site": site, "name": name, "dev": dev, "inventory": inventory, "dtype": dtype,
            "tickets": rows, "total": total, "charts": made, "metrics": metrics,
            "error": error, "range": rng, "ranges": list(RANGES), "metric": metric,
            "history": p.history is not None}


def routes(p: Pages) -> APIRouter:
    r = APIRouter(include_in_schema=False)

    @r.get("/device", response_class=HTMLResponse)
    def device(request: Request, site: str = Query(min_length=1, max_length=128),
               name: str = Query(alias="id", min_length=1, max_length=128),
               span: str = Query("24h", alias="range", pattern="^(6h|24h|7d|30d)$"),
               metric: str | None = Query(None, max_length=200)) -> HTMLResponse:
        user = who(request)
        return p.render.page(request, user, "device.html",
                             **device_model(p, user, site, name, span, metric))

    return r

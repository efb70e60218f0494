"""Silences (`/silences`): the running and scheduled ones, add one, end one early, and the alerts
they muted lately — through the SilenceStore, as the API's `/api/v1/silences` routes.

A user limited to some sites may only add silences that name one of those sites (`site`
matcher, exact), and only see and end such silences: a mute without a site reaches every site.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path
from fastapi.responses import HTMLResponse, JSONResponse
from fieldwatch.collector.web import User
from fieldwatch.collector.web.pages.common import Form, Pages, message, need, who
from pydantic import Field, ValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request

from fieldwatch.durations import parse_duration
from fieldwatch.errors import FieldwatchError


class SilenceForm(Form):
    site: str = Field("", max_length=128)
    device: str = Field("", max_length=256)
    rule: str = Field("", max_length=256)
    labels: str = Field("", max_length=4000)  # one `name=matcher` a line
    duration: str = Field("2h", min_length=1, max_length=16)
    reason: str = Field(min_length=1, max_length=2000)

    def matchers(self) -> dict[str, str]:
        out = {k: v for k, v in (("site", self.site), ("device", self.device),
                                 ("rule", self.rule)) if v}
        for n, line in enumerate(self.labels.splitlines(), 1):
            if not line.strip():
                continue
            name, eq, value = line.partition("=")
            if not eq or not name.strip():
                raise FieldwatchError(f"labels, line {n}: write name=value (or name=!=value, "
                                      "name==~regex)")
            out[name.strip()] = value.strip()
        return out


def site_of(matchers: dict[str, Any]) -> str | None:
    """The one site an exact `site` matcher names (stored matchers are text; `==x` is exact)."""
    raw = matchers.get("site")
    if not isinstance(raw, str) or not raw or raw.startswith(("!=", "=~", "!~")):
        return None
    return raw[2:] if raw.startswith("==") else raw


def may_touch(user: User, matchers: dict[str, Any]) -> bool:
    if user.sites is None:
        return True
    site = site_of(matchers)
    return site is not None and site in user.sites


def routes(p: Pages) -> APIRouter:
    r = APIRouter(include_in_schema=False)

    @r.get("/silences", response_class=HTMLResponse)
    def silences(request: Request) -> HTMLResponse:
        user = who(request)
        now = p.now()
        rows = [s for s in p.silences.list(now) if may_touch(user, s["matchers"])]
        muted = [m for m in p.silences.muted(200) if user.sees(m["site"])][:100]
        return p.render.page(request, user, "silences.html", silences=rows, muted=muted)

    @r.post("/desk/silences")
    def add(request: Request, body: dict[str, Any]) -> JSONResponse:
        user = who(request)
        need(user, "silence.edit")
        try:
            f = SilenceForm.model_validate(body)
        except ValidationError as exc:
            return JSONResponse({"detail": message(exc)}, status_code=422)
        try:
            matchers = f.matchers()
            if not may_touch(user, matchers):
                raise HTTPException(403, "name one of your sites exactly: "
                                         + ", ".join(sorted(user.sites or ())))
            try:
                seconds = parse_duration(f.duration)
            except ValueError as exc:
                raise FieldwatchError(f"duration: {exc}") from None
            now = p.now()
            sid = p.silences.add(matchers, now, now + seconds, user.name, f.reason, now)
        except FieldwatchError as exc:
            return JSONResponse({"detail": str(exc)}, status_code=422)
        return JSONResponse({"id": sid}, status_code=201)

    @r.post("/desk/silences/{sid}/expire")
    def expire(request: Request, sid: Annotated[str, Path(max_length=64)],
               body: dict[str, Any]) -> JSONResponse:
        user = who(request)
        need(user, "silence.edit")
        now = p.now()
        found = next((s for s in p.silences.list(now) if s["id"] == sid), None)
        if found is None or not may_touch(user, found["matchers"]):
            return JSONResponse({"detail": f"no running silence {sid!r}"}, status_code=404)
        if not p.silences.expire(sid, now):
            return JSONResponse({"detail": f"no running silence {sid!r}"}, status_code=404)
        return JSONResponse({"id": sid})

    return r

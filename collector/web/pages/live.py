"""Live updates and the language switch.

Pages poll `GET /desk/live` (every `poll_seconds`, desk.js); when its version changes, the
script fetches the page again and swaps the parts marked `data-live` in place — no full
reload, nothing a person is typing is touched. The version changes with every ticket event,
silence change, and once a minute (times to breach move on). Polling a JSON route rather than
server-sent events: no connection held open per viewer, and it passes any proxy.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from fieldwatch.collector.web.pages import queries
from fieldwatch.collector.web.pages.common import Form, Pages, message, who
from fieldwatch.collector.web.pages.i18n import LANGUAGES
from pydantic import ValidationError
from starlette.requests import Request


class LanguageForm(Form):
    language: str


def routes(p: Pages) -> APIRouter:
    r = APIRouter(include_in_schema=False)

    @r.get("/desk/live")
    def live(request: Request) -> JSONResponse:
        who(request)
        minute = int(p.now() // 60)
        return JSONResponse({"v": f"{queries.live_version(p.engine)}.{minute}"},
                            headers={"Cache-Control": "no-store"})

    @r.post("/desk/language")
    def language(request: Request, body: dict[str, Any]) -> JSONResponse:
        """Set the user's language (kept by the accounts layer, which `set_language` is)."""
        user = who(request)
        try:
            f = LanguageForm.model_validate(body)
        except ValidationError as exc:
            return JSONResponse({"detail": message(exc)}, status_code=422)
        if f.language not in LANGUAGES:
            return JSONResponse({"detail": f"language: one of {', '.join(LANGUAGES)}"},
                                status_code=422)
        if p.set_language is None:
            return JSONResponse({"detail": "the language is set in your account"},
                                status_code=501)
        p.set_language(user, f.language)
        return JSONResponse({"language": f.language})

    return r

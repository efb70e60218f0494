"""What every page module shares: the context the pages run in, and the checks they make
before showing or doing anything (who is asking, may they, may they see this site)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Path
from fieldwatch.collector.diag.store import DiagStore
from fieldwatch.collector.history import HistoryBackend
from fieldwatch.collector.rules.model import RuleSet
from fieldwatch.collector.store.silences import SilenceStore
from fieldwatch.collector.tickets.service_desk import ServiceDesk
from fieldwatch.collector.web import User, allowed, user_of
from fieldwatch.collector.web.pages.render import Renderer
from fieldwatch.collector.web.pages.urgency import DueCache, OrderCache, Recent
from pydantic import BaseModel, ConfigDict, ValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request

SetLanguage = Callable[[User, str], None]
TicketId = Annotated[int, Path(ge=1, le=2**31 - 1, description="ticket id")]


@dataclass
class Pages:
    """Everything the page modules read and act through (made once by `add_pages`)."""

    desk: ServiceDesk
    history: Callable[[], HistoryBackend] | None
    rules: Callable[[], RuleSet]
    render: Renderer
    diag: DiagStore
    silences: SilenceStore
    dues: DueCache
    set_language: SetLanguage | None
    at_risk: float
    orders: OrderCache
    choices: Recent[dict[str, list[str]]]
    @property
    def engine(self) -> Any:
        return self.desk.store.engine

    def now(self) -> float:
        return self.desk.clock.now()


class Form(BaseModel):
    """A JSON body a page's script sends: its fields, plus the CSRF token (checked by the
    accounts layer before the route runs, ignored here)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    csrf: str = ""


def who(request: Request) -> User:
    return user_of(request)


def need(user: User, action: str, site: str | None = None) -> None:
    """403 unless `user` may do `action` (on `site`)."""
    if not allowed(user, action, site):
        where = f" on site {site}" if site is not None else ""
        raise HTTPException(403, f"{user.name} ({user.role}) may not {action}{where}")


def visible(user: User, site: str) -> None:
    """404 (not 403: do not confirm it exists) for what lies outside the user's sites."""
    if not user.sees(site):
        raise HTTPException(404, "not found")


def message(exc: ValidationError) -> str:
    """The first problem of a body, as one line a person can act on."""
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
    return f"{where}: {err.get('msg', 'invalid')}" if where else str(err.get("msg", "invalid"))

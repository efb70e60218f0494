"""The service desk's web pages and their accounts (docs/desk.md).

Contract between the accounts layer (collector/web/accounts/: users, sessions, CSRF, roles,
site scopes, per-user API tokens) and the pages (collector/web/pages/): the accounts middleware
puts the logged-in `User` on `request.state.user` for every request it lets through (pages and
API alike); pages and routes read it with `user_of(request)` and ask `allowed(...)` before they
act. Nothing below reads a session or a token itself.

How pages use the accounts layer (docs/desk.md):

- Not logged in: `user_of` raises 401; for a GET of a page (any path outside /api/) the app
  answers with a redirect to `/login?next=<path>`, and back after login.
- Writes: every state change riding on the session carries its CSRF token,
  `collector.web.accounts.csrf_token(request)`: in a form as the hidden field `csrf`
  (`<input type=hidden name=csrf value=...>`, method post, application/x-www-form-urlencoded,
  to a path outside /api/), or as the `X-CSRF-Token` header of a fetch() with a JSON body
  (`GET /api/v1/me` gives it to scripts as `csrf_token`). The middleware checks it before the
  route runs (403 otherwise) and parses the form: read its fields with
  `collector.web.accounts.form_of(request)` (python-multipart is not needed).
- Scope: objects of a site the user does not see answer 404, as if missing —
  `collector.web.accounts.access.visible_ticket(store, user, id)`; `require(user, action,
  site)` answers 403. The ServiceDesk reads take the scope: `list(..., sites=user.sites)`,
  `show(id, user.sites)`, `kpi(since, until, sites=...)`, `device_history(..., sites=...)`,
  and `act(..., sites=...)` / `create(..., sites=...)` return what `show` would. The actor of
  every change is `user.name`.
- Language: `user.language` ("en" or "zh"); the user changes it with a form posting `language`
  (and `csrf`, optional `next`) to `POST /account/language`.
- Log out: a form posting `csrf` to `POST /logout`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from starlette.exceptions import HTTPException
from starlette.requests import Request

Role = Literal["viewer", "engineer", "supervisor", "admin"]
ROLES: tuple[Role, ...] = ("viewer", "engineer", "supervisor", "admin")  # each can do the last's

# What each role may do beyond reading (the desk's actions, by the name pages and API use).
ACTIONS: dict[str, Role] = {
    "ticket.act": "engineer",        # acknowledge, assign, comment, wait, resolve, close, reopen
    "ticket.create": "engineer",     # phoned-in fault intake
    "diag.run": "engineer",
    "diag.approve": "supervisor",
    "silence.edit": "supervisor",
    "outbox.retry": "supervisor",    # send dead deliveries to external desks again
    "user.admin": "admin",
}


@dataclass(frozen=True, slots=True)
class User:
    """Who is asking. `sites` None: every site (admins, unscoped supervisors)."""

    name: str
    role: Role
    sites: frozenset[str] | None = None
    language: str = "en"

    def sees(self, site: str) -> bool:
        return self.sites is None or site in self.sites


def allowed(user: User, action: str, site: str | None = None) -> bool:
    """May `user` do `action` (on `site`)? Unknown actions are refused."""
    need = ACTIONS.get(action)
    if need is None or ROLES.index(user.role) < ROLES.index(need):
        return False
    return site is None or user.sees(site)


def user_of(request: Request) -> User:
    """The logged-in user the accounts middleware attached; 401 when there is none."""
    user = getattr(request.state, "user", None)
    if not isinstance(user, User):
        raise HTTPException(401, "log in first")
    return user

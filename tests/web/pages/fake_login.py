"""TEST ONLY — a stand-in for the accounts middleware (collector/web/accounts/), which is built
apart from the pages: it puts the `User` named by the `fw-test-user` cookie on
`request.state.user`, as the real middleware puts the logged-in one. Never used outside tests.
"""

from __future__ import annotations

from dataclasses import replace

from fieldwatch.collector.web import User
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Receive, Scope, Send

COOKIE = "fw-test-user"


class TestOnlyUsers:
    """The users the stand-in knows, and the language switch it stores (the accounts layer
    keeps a user's language in its own store)."""

    def __init__(self, *users: User) -> None:
        self.by_name = {u.name: u for u in users}

    def set_language(self, user: User, language: str) -> None:
        self.by_name[user.name] = replace(self.by_name[user.name], language=language)


class TestOnlyLoginMiddleware:
    """TEST ONLY: no password, no session — the cookie names the user."""

    def __init__(self, app: ASGIApp, users: TestOnlyUsers) -> None:
        self.app, self.users = app, users

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            name = HTTPConnection(scope).cookies.get(COOKIE)
            user = self.users.by_name.get(name or "")
            if user is not None:
                scope.setdefault("state", {})["user"] = user
        await self.app(scope, receive, send)

"""Server-side login sessions: the browser holds a random id in a cookie, the database its
SHA-256 with the user and an expiry. Logging out, a new password or removing the user deletes
the row, so the cookie is worth nothing from then on, wherever a copy of it is."""

from __future__ import annotations

import secrets

import sqlalchemy as sa
from fieldwatch.collector.store.schema import desk_sessions
from fieldwatch.collector.web import User
from fieldwatch.collector.web.accounts.store import AccountStore, secret_hash

COOKIE = "fieldwatch_session"
TTL = 12 * 3600.0  # a working day and some: then log in again
MAX_ID = 128  # longer cookie values are not ours; not looked up


class Sessions:
    def __init__(self, accounts: AccountStore, ttl: float = TTL) -> None:
        self.accounts, self.ttl = accounts, ttl

    def start(self, name: str) -> str:
        """A new session for `name`; the cookie value, returned once. Expired rows go too."""
        raw = secrets.token_urlsafe(32)
        now = self.accounts.clock.now()
        with self.accounts.engine.begin() as conn:
            conn.execute(desk_sessions.delete().where(desk_sessions.c.expires_at <= now))
            conn.execute(desk_sessions.insert().values(
                id_hash=secret_hash(raw), user_name=name, created_at=now,
                expires_at=now + self.ttl))
        return raw

    def user(self, raw: str) -> User | None:
        """The user of a live session, or None (unknown, ended or expired)."""
        if not raw or len(raw) > MAX_ID:
            return None
        now = self.accounts.clock.now()
        with self.accounts.engine.connect() as conn:
            name = conn.execute(sa.select(desk_sessions.c.user_name).where(
                desk_sessions.c.id_hash == secret_hash(raw),
                desk_sessions.c.expires_at > now)).scalar()
            return None if name is None else self.accounts.user(name, conn)

    def end(self, raw: str) -> None:
        with self.accounts.engine.begin() as conn:
            conn.execute(desk_sessions.delete().where(desk_sessions.c.id_hash == secret_hash(raw)))

    def count(self, name: str) -> int:
        """Live sessions of `name` (for `users list` and tests)."""
        now = self.accounts.clock.now()
        with self.accounts.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).where(
                desk_sessions.c.user_name == name, desk_sessions.c.expires_at > now)
            ).scalar_one())

"""Desk users, their site grants and their API tokens, in the collector's database.

Who may do what is the contract's (`collector/web/__init__.py`: roles, ACTIONS, `allowed`);
this module only keeps the facts and turns a stored user into a `User`. Passwords are kept as
argon2id hashes, API tokens as SHA-256 hashes of random values shown once.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from fieldwatch.collector.store.schema import (
    desk_api_tokens,
    desk_sessions,
    desk_user_sites,
    desk_users,
)
from fieldwatch.collector.web import ROLES, Role, User
from fieldwatch.collector.web.accounts.passwords import Passwords

from fieldwatch.clock import Clock, SystemClock
from fieldwatch.errors import AccountError

LANGUAGES = ("en", "zh")  # English, Simplified Chinese
ALL_SITES = "*"  # the grant that means every site, present and future
STATIC_TOKEN_USER = "api-token"  # desk.api_token_file / _env tokens act as this admin
TOKEN_PREFIX = "fwu_"  # a per-user token; secret scanners and people can tell it apart
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
TOKEN_TOUCH_EVERY = 3600.0  # seconds: `last_used_at` is written at most this often


def secret_hash(raw: str) -> str:
    """How random secrets (session ids, API tokens) are stored and looked up."""
    return hashlib.sha256(raw.encode()).hexdigest()


def check_name(name: str) -> str:
    if not NAME.fullmatch(name):
        raise AccountError(f"bad user name {name!r}: 1-64 letters, digits and . _ @ -, "
                           "starting with a letter or digit")
    if name == STATIC_TOKEN_USER:
        raise AccountError(f"{STATIC_TOKEN_USER!r} is reserved: it names the shared API token")
    return name


def check_role(role: str) -> Role:
    if role not in ROLES:
        raise AccountError(f"bad role {role!r}: one of {', '.join(ROLES)}")
    return role  # type: ignore[return-value]


def check_language(language: str) -> str:
    if language not in LANGUAGES:
        raise AccountError(f"bad language {language!r}: one of {', '.join(LANGUAGES)}")
    return language


def check_site(site: str) -> str:
    if not site or len(site) > 128 or "\x00" in site:
        raise AccountError(f"bad site {site!r}: 1-128 characters")
    return site


def make_user(row: Any, sites: Iterable[str]) -> User:
    """The `User` a stored row and its grants stand for (admins see every site)."""
    every = row.role == "admin" or row.all_sites
    return User(row.name, row.role, None if every else frozenset(sites), row.language)


class AccountStore:
    def __init__(self, engine: sa.Engine, passwords: Passwords | None = None,
                 clock: Clock | None = None) -> None:
        self.engine = engine
        self.passwords = passwords or Passwords()
        self.clock = clock or SystemClock()

    # -- reading ------------------------------------------------------------------------------

    def count(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(desk_users)
                                    ).scalar_one())

    def user(self, name: str, conn: sa.Connection | None = None) -> User | None:
        if conn is None:
            with self.engine.connect() as c:
                return self.user(name, c)
        row = conn.execute(sa.select(desk_users).where(desk_users.c.name == name)).first()
        if row is None:
            return None
        sites = conn.execute(sa.select(desk_user_sites.c.site).where(
            desk_user_sites.c.user_name == name)).scalars()
        return make_user(row, sites)

    def list(self) -> list[dict[str, Any]]:
        """Every user, the stable shape of `fieldwatch users list --json` (docs/desk.md)."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(desk_users).order_by(desk_users.c.name)).all()
            grants: dict[str, list[str]] = {}
            for name, site in conn.execute(sa.select(desk_user_sites).order_by(
                    desk_user_sites.c.user_name, desk_user_sites.c.site)):
                grants.setdefault(name, []).append(site)
            tokens = dict(conn.execute(sa.select(
                desk_api_tokens.c.user_name, sa.func.count()).group_by(
                desk_api_tokens.c.user_name)).all())
        out = []
        for r in rows:
            u = make_user(r, grants.get(r.name, []))
            out.append({"name": r.name, "role": r.role, "language": r.language,
                        "sites": None if u.sites is None else sorted(u.sites),
                        "login": r.password_hash is not None, "tokens": tokens.get(r.name, 0),
                        "created_at": r.created_at})
        return out

    # -- changing -----------------------------------------------------------------------------

    def add(self, name: str, role: str, password: str | None = None, *,
            sites: Iterable[str] = (), language: str = "en") -> User:
        """A new user; `sites` may hold ALL_SITES. AccountError if the name is taken."""
        check_name(name)
        check_role(role)
        check_language(language)
        sites = [check_site(s) for s in sites]
        hashed = self._hash(password) if password is not None else None
        now = self.clock.now()
        with self.engine.begin() as conn:
            if conn.execute(sa.select(desk_users.c.name).where(
                    desk_users.c.name == name)).first() is not None:
                raise AccountError(f"user {name!r} exists already")
            conn.execute(desk_users.insert().values(
                name=name, role=role, password_hash=hashed, language=language,
                all_sites=ALL_SITES in sites, created_at=now,
                password_at=now if hashed else None))
            self._grant(conn, name, sites)
            user = self.user(name, conn)
        assert user is not None
        return user

    def set_password(self, name: str, password: str) -> None:
        """A new password; the user's sessions end (whoever had it is logged out)."""
        hashed = self._hash(password)
        with self.engine.begin() as conn:
            self._existing(conn, name)
            conn.execute(desk_users.update().where(desk_users.c.name == name).values(
                password_hash=hashed, password_at=self.clock.now()))
            conn.execute(desk_sessions.delete().where(desk_sessions.c.user_name == name))

    def grant(self, name: str, sites: Iterable[str]) -> User:
        sites = [check_site(s) for s in sites]
        with self.engine.begin() as conn:
            self._existing(conn, name)
            self._grant(conn, name, sites)
            if ALL_SITES in sites:
                conn.execute(desk_users.update().where(desk_users.c.name == name).values(
                    all_sites=True))
            user = self.user(name, conn)
        assert user is not None
        return user

    def revoke(self, name: str, sites: Iterable[str]) -> User:
        sites = list(sites)
        with self.engine.begin() as conn:
            self._existing(conn, name)
            if ALL_SITES in sites:
                conn.execute(desk_users.update().where(desk_users.c.name == name).values(
                    all_sites=False))
            conn.execute(desk_user_sites.delete().where(
                desk_user_sites.c.user_name == name, desk_user_sites.c.site.in_(sites)))
            user = self.user(name, conn)
        assert user is not None
        return user

    def update(self, name: str, *, role: str | None = None,
               language: str | None = None) -> User:
        values: dict[str, Any] = {}
        if role is not None:
            values["role"] = check_role(role)
        if language is not None:
            values["language"] = check_language(language)
        with self.engine.begin() as conn:
            self._existing(conn, name)
            if values:
                conn.execute(desk_users.update().where(desk_users.c.name == name).values(
                    **values))
            user = self.user(name, conn)
        assert user is not None
        return user

    def remove(self, name: str) -> None:
        """The user, their grants, sessions and tokens; their name stays in timelines."""
        with self.engine.begin() as conn:
            self._existing(conn, name)
            for table in (desk_sessions, desk_api_tokens, desk_user_sites):
                conn.execute(table.delete().where(table.c.user_name == name))
            conn.execute(desk_users.delete().where(desk_users.c.name == name))

    # -- logging in ---------------------------------------------------------------------------

    def login(self, name: str, password: str) -> User | None:
        """The user when `password` is theirs, else None (an unknown name costs as much)."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(desk_users.c.password_hash).where(
                desk_users.c.name == name)).first()
        stored = row.password_hash if row is not None else None
        if not self.passwords.verify(stored, password):
            return None
        assert stored is not None
        if self.passwords.needs_rehash(stored):  # stronger settings since it was set
            with self.engine.begin() as conn:
                conn.execute(desk_users.update().where(
                    desk_users.c.name == name, desk_users.c.password_hash == stored).values(
                    password_hash=self.passwords.hash(password)))
        return self.user(name)

    # -- API tokens ---------------------------------------------------------------------------

    def new_token(self, name: str, label: str = "") -> str:
        """A new API token for `name`, returned once (only its hash is kept)."""
        if len(label) > 128:
            raise AccountError("a token label may have at most 128 characters")
        raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
        with self.engine.begin() as conn:
            self._existing(conn, name)
            conn.execute(desk_api_tokens.insert().values(
                token_hash=secret_hash(raw), user_name=name, label=label,
                created_at=self.clock.now()))
        return raw

    def revoke_tokens(self, name: str) -> int:
        with self.engine.begin() as conn:
            self._existing(conn, name)
            return int(conn.execute(desk_api_tokens.delete().where(
                desk_api_tokens.c.user_name == name)).rowcount)

    def token_user(self, raw: str) -> User | None:
        """Whose token `raw` is, or None."""
        if not raw.startswith(TOKEN_PREFIX) or len(raw) > 256:
            return None
        now = self.clock.now()
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(desk_api_tokens).where(
                desk_api_tokens.c.token_hash == secret_hash(raw))).first()
            if row is None:
                return None
            user = self.user(row.user_name, conn)
        if row.last_used_at is None or now - row.last_used_at >= TOKEN_TOUCH_EVERY:
            with self.engine.begin() as conn:
                conn.execute(desk_api_tokens.update().where(
                    desk_api_tokens.c.id == row.id).values(last_used_at=now))
        return user

    # -- helpers ------------------------------------------------------------------------------

    def _hash(self, password: str) -> str:
        try:
            return self.passwords.hash(password)
        except ValueError as exc:
            raise AccountError(str(exc)) from None

    @staticmethod
    def _existing(conn: sa.Connection, name: str) -> None:
        if conn.execute(sa.select(desk_users.c.name).where(
                desk_users.c.name == name)).first() is None:
            raise AccountError(f"no user {name!r}")

    @staticmethod
    def _grant(conn: sa.Connection, name: str, sites: Iterable[str]) -> None:
        have = set(conn.execute(sa.select(desk_user_sites.c.site).where(
            desk_user_sites.c.user_name == name)).scalars())
        for site in dict.fromkeys(sites):
            if site != ALL_SITES and site not in have:
                conn.execute(desk_user_sites.insert().values(user_name=name, site=site))

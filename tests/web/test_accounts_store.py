"""Users, grants, passwords, sessions and API tokens in the database — on SQLite and
PostgreSQL — and what a stored user turns into (`User`: role, sites, language)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from fieldwatch.collector.store.db import open_engine
from fieldwatch.collector.store.schema import desk_api_tokens, desk_sessions, desk_users
from fieldwatch.collector.web import User
from fieldwatch.collector.web.accounts.sessions import Sessions
from fieldwatch.collector.web.accounts.store import AccountStore

from fieldwatch.clock import FakeClock
from fieldwatch.errors import AccountError
from tests.web.conftest import cheap_passwords

PW = "a long password"


@pytest.fixture
def accounts(db_url_any: str, clock: FakeClock):  # type: ignore[no-untyped-def]
    a = AccountStore(open_engine(db_url_any), cheap_passwords(), clock)
    yield a
    a.engine.dispose()


def test_a_user_sees_the_sites_granted_and_admins_every_site(accounts: AccountStore) -> None:
    assert accounts.add("ana", "engineer", PW, sites=["plant-a"]) == User(
        "ana", "engineer", frozenset({"plant-a"}), "en")
    assert accounts.add("root", "admin", PW, sites=["plant-a"]).sites is None
    assert accounts.add("vic", "viewer", PW).sites == frozenset()  # nothing until granted
    assert accounts.grant("vic", ["plant-b", "plant-a", "plant-b"]).sites == {"plant-a",
                                                                              "plant-b"}
    assert accounts.revoke("vic", ["plant-b"]).sites == {"plant-a"}
    sue = accounts.add("sue", "supervisor", PW, sites=["*"], language="zh")
    assert (sue.sites, sue.language) == (None, "zh")
    assert accounts.revoke("sue", ["*"]).sites == frozenset()
    assert accounts.update("vic", role="engineer", language="zh") == User(
        "vic", "engineer", frozenset({"plant-a"}), "zh")
    listed = {u["name"]: u for u in accounts.list()}
    assert listed["root"]["sites"] is None and listed["ana"]["sites"] == ["plant-a"]
    assert [u["name"] for u in accounts.list()] == ["ana", "root", "sue", "vic"]


BAD_CHANGES = [
    (lambda a: a.add("ana", "engineer", PW), "exists already"),
    (lambda a: a.add("bo", "wizard", PW), "bad role"),
    (lambda a: a.add("bo", "viewer", PW, language="fr"), "bad language"),
    (lambda a: a.add("b o", "viewer", PW), "bad user name"),
    (lambda a: a.add("", "viewer", PW), "bad user name"),
    (lambda a: a.add("api-token", "viewer", PW), "reserved"),
    (lambda a: a.add("bo", "viewer", "short"), "at least 8"),
    (lambda a: a.add("bo", "viewer", PW, sites=[""]), "bad site"),
    (lambda a: a.grant("nobody", ["x"]), "no user 'nobody'"),
    (lambda a: a.set_password("nobody", PW), "no user"),
    (lambda a: a.new_token("nobody"), "no user"),
    (lambda a: a.remove("nobody"), "no user"),
    (lambda a: a.update("ana", role="boss"), "bad role"),
]


def test_bad_changes_are_refused_with_a_reason(accounts: AccountStore) -> None:
    accounts.add("ana", "engineer", PW)
    for call, message in BAD_CHANGES:  # one database for all: a PostgreSQL one costs seconds
        with pytest.raises(AccountError, match=message):
            call(accounts)
    assert [u["name"] for u in accounts.list()] == ["ana"]
    assert accounts.user("ana") == User("ana", "engineer", frozenset())


def test_passwords_are_stored_as_argon2id_and_checked(accounts: AccountStore) -> None:
    accounts.add("ana", "engineer", PW, sites=["plant-a"])
    with accounts.engine.connect() as conn:
        stored = conn.execute(sa.select(desk_users.c.password_hash)).scalar_one()
    assert stored.startswith("$argon2id$") and PW not in stored
    assert accounts.login("ana", PW) == User("ana", "engineer", frozenset({"plant-a"}))
    assert accounts.login("ana", PW + "x") is None
    assert accounts.login("nobody", PW) is None
    assert accounts.login("ana", "x" * 5000) is None  # over the cap: not even hashed
    accounts.add("script", "engineer")  # no password: tokens only
    assert accounts.login("script", "") is None and accounts.login("script", PW) is None


def test_a_weaker_hash_is_upgraded_at_login(accounts: AccountStore) -> None:
    accounts.add("ana", "engineer", PW)
    stronger = AccountStore(accounts.engine, type(accounts.passwords)(
        type(accounts.passwords.hasher)(time_cost=2, memory_cost=2048, parallelism=1)))
    assert stronger.login("ana", PW) is not None
    with accounts.engine.connect() as conn:
        stored = conn.execute(sa.select(desk_users.c.password_hash)).scalar_one()
    assert "m=2048,t=2" in stored and stronger.login("ana", PW) is not None


def test_sessions_expire_end_and_die_with_a_new_password(accounts: AccountStore,
                                                         clock: FakeClock) -> None:
    accounts.add("ana", "engineer", PW, sites=["plant-a"])
    sessions = Sessions(accounts, ttl=3600)
    sid = sessions.start("ana")
    with accounts.engine.connect() as conn:
        [stored] = conn.execute(sa.select(desk_sessions.c.id_hash)).scalars()
    assert sid not in stored and len(stored) == 64  # only its hash is kept
    assert sessions.user(sid) == accounts.user("ana")
    assert sessions.user(sid + "x") is None and sessions.user("") is None
    clock.advance(3601)
    assert sessions.user(sid) is None  # expired
    sid = sessions.start("ana")  # (and the expired row is gone)
    assert sessions.count("ana") == 1
    sessions.end(sid)
    assert sessions.user(sid) is None
    sid = sessions.start("ana")
    accounts.set_password("ana", PW + " new")
    assert sessions.user(sid) is None
    sid = sessions.start("ana")
    accounts.update("ana", language="zh")
    assert sessions.user(sid) == User("ana", "engineer", frozenset({"plant-a"}), "zh")
    accounts.remove("ana")
    assert sessions.user(sid) is None


def test_api_tokens_are_per_user_and_stored_hashed(accounts: AccountStore,
                                                   clock: FakeClock) -> None:
    accounts.add("ana", "viewer", PW, sites=["plant-a"])
    accounts.add("bo", "engineer")
    t1, t2 = accounts.new_token("ana", "grafana"), accounts.new_token("bo")
    assert t1 != t2 and t1.startswith("fwu_")
    assert accounts.token_user(t1) == User("ana", "viewer", frozenset({"plant-a"}))
    assert accounts.token_user(t2).name == "bo"  # type: ignore[union-attr]
    assert accounts.token_user(t1[:-1]) is None and accounts.token_user("other") is None
    with accounts.engine.connect() as conn:
        rows = conn.execute(sa.select(desk_api_tokens)).all()
    assert {r.label for r in rows} == {"grafana", ""} and all(
        t1 not in r.token_hash for r in rows)
    assert {r.user_name: r.last_used_at for r in rows} == {"ana": clock.t, "bo": clock.t}
    assert {u["name"]: u["tokens"] for u in accounts.list()} == {"ana": 1, "bo": 1}
    assert accounts.revoke_tokens("ana") == 1
    assert accounts.token_user(t1) is None and accounts.token_user(t2) is not None
    accounts.remove("bo")
    assert accounts.token_user(t2) is None

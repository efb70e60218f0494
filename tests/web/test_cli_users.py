"""`fieldwatch users ...` on a real database, passwords from standard input; and the first
admin `fieldwatch up` makes on a database without users."""

from __future__ import annotations

import io
import json
import stat
from pathlib import Path

import pytest
from fieldwatch.collector.store.db import open_engine
from fieldwatch.collector.web import User
from fieldwatch.collector.web.accounts.store import AccountStore

from fieldwatch.cli import main
from fieldwatch.cli.users import first_admin


@pytest.fixture
def db(tmp_path: Path) -> str:
    return str(tmp_path / "fw.db")


def run(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, *argv: str,
        stdin: str = "") -> tuple[int, str, str]:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_add_grant_passwd_list_token_remove(db: str, capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, err = run(capsys, monkeypatch, "users", "add", "ana", "--role", "engineer",
                         "--site", "plant-a", "--language", "zh", "--db", db,
                         stdin="first password\n")
    assert code == 0, err
    assert out == "added ana: engineer, sees plant-a, language zh\n"
    code, out, err = run(capsys, monkeypatch, "users", "add", "vic", "--role", "viewer",
                         "--db", db, stdin="another password\n")
    assert "sees no site yet" in out and "users grant vic --site SITE" in err
    assert run(capsys, monkeypatch, "users", "grant", "vic", "--site", "plant-a", "--site",
               "plant-b", "--db", db)[1] == "vic sees plant-a, plant-b\n"
    assert run(capsys, monkeypatch, "users", "grant", "vic", "--site", "plant-b", "--revoke",
               "--db", db)[1] == "vic sees plant-a\n"
    assert run(capsys, monkeypatch, "users", "set", "vic", "--role", "engineer", "--db", db
               )[1] == "vic: engineer, sees plant-a, language en\n"
    accounts = AccountStore(open_engine(f"sqlite:///{db}"))
    assert accounts.login("ana", "first password") == User(
        "ana", "engineer", frozenset({"plant-a"}), "zh")
    assert run(capsys, monkeypatch, "users", "passwd", "ana", "--db", db,
               stdin="second password\r\n")[0] == 0
    assert accounts.login("ana", "first password") is None
    assert accounts.login("ana", "second password") is not None
    code, token, err = run(capsys, monkeypatch, "users", "token", "vic", "--label", "ci",
                           "--db", db)
    assert code == 0 and "shown only now" in err
    assert accounts.token_user(token.strip()) == accounts.user("vic")
    code, out, _ = run(capsys, monkeypatch, "users", "list", "--json", "--db", db)
    listed = json.loads(out)
    assert [(u["name"], u["role"], u["sites"], u["language"], u["login"], u["tokens"])
            for u in listed] == [("ana", "engineer", ["plant-a"], "zh", True, 0),
                                 ("vic", "engineer", ["plant-a"], "en", True, 1)]
    assert listed[0]["created_at"].endswith("Z")
    out = run(capsys, monkeypatch, "users", "list", "--db", db)[1]
    assert out.splitlines()[0].split() == ["NAME", "ROLE", "SITES", "LANGUAGE", "LOGIN",
                                           "TOKENS"]
    assert run(capsys, monkeypatch, "users", "token", "vic", "--revoke-all", "--db", db
               )[1] == "1 token(s) of vic deleted\n"
    assert run(capsys, monkeypatch, "users", "remove", "vic", "--db", db)[0] == 0
    assert accounts.user("vic") is None
    accounts.engine.dispose()


@pytest.mark.parametrize(("argv", "stdin", "code", "message"), [
    (["add", "bo", "--role", "engineer"], "", 2, "no password"),
    (["add", "bo", "--role", "engineer"], "short\n", 1, "at least 8 characters"),
    (["add", "api-token", "--role", "admin"], "long enough pw\n", 1, "reserved"),
    (["add", "ana", "--role", "admin"], "long enough pw\n", 1, "exists already"),
    (["passwd", "nobody"], "long enough pw\n", 1, "no user 'nobody'"),
    (["grant", "nobody", "--site", "x"], "", 1, "no user 'nobody'"),
    (["set", "ana"], "", 2, "nothing to set"),
    (["token", "nobody"], "", 1, "no user 'nobody'"),
])
def test_mistakes_are_one_line(db: str, capsys: pytest.CaptureFixture[str],
                               monkeypatch: pytest.MonkeyPatch, argv: list[str], stdin: str,
                               code: int, message: str) -> None:
    AccountStore(open_engine(f"sqlite:///{db}")).add("ana", "engineer")
    got, _, err = run(capsys, monkeypatch, "users", *argv, "--db", db, stdin=stdin)
    assert got == code and message in err and len(err.strip().splitlines()) == 1, err


def test_a_token_only_user_cannot_log_in(db: str, capsys: pytest.CaptureFixture[str],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    out = run(capsys, monkeypatch, "users", "add", "grafana", "--role", "viewer", "--site",
              "*", "--no-password", "--db", db)[1]
    assert out == "added grafana: viewer, sees every site, language en; no login (API " \
                  "tokens only)\n"
    listed = json.loads(run(capsys, monkeypatch, "users", "list", "--json", "--db", db)[1])
    assert (listed[0]["login"], listed[0]["sites"]) == (False, None)


def test_the_first_admin_once(tmp_path: Path) -> None:
    engine = open_engine(f"sqlite:///{tmp_path / 'fw.db'}")
    secret = tmp_path / "admin-password"
    secret.write_text("left from a database that is gone\n")
    assert first_admin(engine, secret)
    password = secret.read_text().strip()
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600 and len(password) >= 16
    accounts = AccountStore(engine)
    assert accounts.login("admin", password) == User("admin", "admin", None)
    assert not first_admin(engine, secret)  # users exist: nothing made, nothing rewritten
    assert secret.read_text().strip() == password
    engine.dispose()


def test_up_and_collector_take_the_listen_address_and_tls(
        capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["up", "--help"], ["collector", "run", "--help"]):
        with pytest.raises(SystemExit):
            main(argv)
        out = capsys.readouterr().out
        assert "--http-host ADDR" in out and "--tls-cert PEM" in out and "--tls-key PEM" in out

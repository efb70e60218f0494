"""`fieldwatch users add|passwd|grant|set|list|token|remove` — the people of the service desk.

Users live in the collector's database (--data/--db/--config, as every state command). A
password is typed at a terminal (asked twice) or read as the first line of standard input
(`printf '%s\\n' "$PW" | fieldwatch users passwd ana`); it never goes on the command line.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from fieldwatch.cli.common import CommandLineError, print_json, print_table
from fieldwatch.cli.state import add_state_options, open_store

if TYPE_CHECKING:
    import sqlalchemy as sa

    from fieldwatch.collector.web.accounts.store import AccountStore

ROLES = ("viewer", "engineer", "supervisor", "admin")  # collector/web ROLES (kept light here)
LANGUAGES = ("en", "zh")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("users", help="desk users: add, passwords, site grants, API tokens")
    usub = p.add_subparsers(dest="users_command", required=True, metavar="ACTION")

    add = usub.add_parser("add", help="add a user (asks for the password)")
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=ROLES)
    add.add_argument("--site", action="append", default=[], metavar="SITE",
                     help="a site the user sees (repeatable; * for every site; admins see "
                          "every site anyway)")
    add.add_argument("--language", choices=LANGUAGES, default="en", help="pages' language")
    add.add_argument("--no-password", action="store_true",
                     help="no login, API tokens only (for scripts)")
    add_state_options(add)
    add.set_defaults(func=add_user)

    pw = usub.add_parser("passwd", help="set a user's password (their sessions end)")
    pw.add_argument("name")
    add_state_options(pw)
    pw.set_defaults(func=set_password)

    grant = usub.add_parser("grant", help="let a user see more sites (or fewer: --revoke)")
    grant.add_argument("name")
    grant.add_argument("--site", action="append", required=True, metavar="SITE",
                       help="repeatable; * for every site")
    grant.add_argument("--revoke", action="store_true", help="take these sites away")
    add_state_options(grant)
    grant.set_defaults(func=grant_sites)

    st = usub.add_parser("set", help="change a user's role or language")
    st.add_argument("name")
    st.add_argument("--role", choices=ROLES)
    st.add_argument("--language", choices=LANGUAGES)
    add_state_options(st)
    st.set_defaults(func=set_user)

    ls = usub.add_parser("list", help="the users, their roles and sites")
    ls.add_argument("--json", action="store_true", help="stable JSON (docs/desk.md)")
    add_state_options(ls)
    ls.set_defaults(func=list_users)

    tok = usub.add_parser("token", help="make an API token for a user (printed once)")
    tok.add_argument("name")
    tok.add_argument("--label", default="", help="what the token is for")
    tok.add_argument("--revoke-all", action="store_true",
                     help="delete every token of the user instead")
    add_state_options(tok)
    tok.set_defaults(func=make_token)

    rm = usub.add_parser("remove", help="remove a user, their sessions and tokens")
    rm.add_argument("name")
    add_state_options(rm)
    rm.set_defaults(func=remove_user)


def _accounts(args: argparse.Namespace, *, write: bool = True) -> AccountStore:
    from fieldwatch.collector.web.accounts.store import AccountStore

    return AccountStore(open_store(args, write=write).engine)


def read_password(name: str) -> str:
    """From the terminal (twice), else the first line of standard input."""
    if sys.stdin.isatty():
        first = getpass.getpass(f"password for {name}: ")
        if getpass.getpass("again: ") != first:
            raise CommandLineError("the two passwords differ; nothing changed")
        return first
    line = sys.stdin.readline()
    if not line:
        raise CommandLineError("no password: type it at a terminal, or give it as the first "
                               "line of standard input")
    return line.rstrip("\r\n")


def _sites(sites: frozenset[str] | None) -> str:
    return "every site" if sites is None else (", ".join(sorted(sites)) or "no site yet")


def add_user(args: argparse.Namespace) -> int:
    accounts = _accounts(args)
    password = None if args.no_password else read_password(args.name)
    user = accounts.add(args.name, args.role, password, sites=args.site, language=args.language)
    print(f"added {user.name}: {user.role}, sees {_sites(user.sites)}, language {user.language}"
          + ("" if password is not None else "; no login (API tokens only)"))
    if user.sites == frozenset() and user.role != "admin":
        print(f"  grant sites with: fieldwatch users grant {user.name} --site SITE",
              file=sys.stderr)
    accounts.engine.dispose()
    return 0


def set_password(args: argparse.Namespace) -> int:
    accounts = _accounts(args)
    accounts.set_password(args.name, read_password(args.name))
    print(f"password of {args.name} changed; their sessions ended")
    accounts.engine.dispose()
    return 0


def grant_sites(args: argparse.Namespace) -> int:
    accounts = _accounts(args)
    change = accounts.revoke if args.revoke else accounts.grant
    user = change(args.name, args.site)
    print(f"{user.name} sees {_sites(user.sites)}")
    accounts.engine.dispose()
    return 0


def set_user(args: argparse.Namespace) -> int:
    if args.role is None and args.language is None:
        raise CommandLineError("nothing to set: give --role and/or --language")
    accounts = _accounts(args)
    user = accounts.update(args.name, role=args.role, language=args.language)
    print(f"{user.name}: {user.role}, sees {_sites(user.sites)}, language {user.language}")
    accounts.engine.dispose()
    return 0


def list_users(args: argparse.Namespace) -> int:
    accounts = _accounts(args, write=False)
    rows = accounts.list()
    accounts.engine.dispose()
    if args.json:
        from fieldwatch.jsonout import iso

        print_json({**r, "created_at": iso(r["created_at"])} for r in rows)
        return 0
    print_table([{**r, "sites": "*" if r["sites"] is None else ",".join(r["sites"]) or "-",
                  "login": "yes" if r["login"] else "no"} for r in rows],
                ["name", "role", "sites", "language", "login", "tokens"])
    return 0


def make_token(args: argparse.Namespace) -> int:
    accounts = _accounts(args)
    if args.revoke_all:
        n = accounts.revoke_tokens(args.name)
        print(f"{n} token(s) of {args.name} deleted")
    else:
        token = accounts.new_token(args.name, args.label)
        print(token)
        print(f"(the API token of {args.name}: Authorization: Bearer <token>; it is shown only "
              "now)", file=sys.stderr)
    accounts.engine.dispose()
    return 0


def remove_user(args: argparse.Namespace) -> int:
    accounts = _accounts(args)
    accounts.remove(args.name)
    print(f"removed {args.name} (their name stays in ticket timelines)")
    accounts.engine.dispose()
    return 0


def first_admin(engine: sa.Engine, path: Path) -> bool:
    """On a database without users, add `admin` with a new password written to `path`
    (0600); True when it did. `fieldwatch up` calls it at start."""
    from fieldwatch.collector.web.accounts.passwords import generate_password
    from fieldwatch.collector.web.accounts.store import AccountStore

    accounts = AccountStore(engine)
    if accounts.count():
        return False
    password = generate_password()
    path.unlink(missing_ok=True)  # an old one is stale: its database is gone
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(password + "\n")
    accounts.add("admin", "admin", password)
    return True

"""Argument types for diagnostics: each turns an untrusted request value into a safe one or
refuses it. Values end up as single argv elements (never a shell), and anything that could be
read as an option (a leading `-`) or a path outside a configured root is refused outright.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fieldwatch.errors import DiagnosticRefused

_HOSTNAME = re.compile(r"^(?=.{1,253}$)(?!-)[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,62})"
                       r"(?:\.(?!-)[A-Za-z0-9_-]{1,63})*\.?$")
_OID = re.compile(r"^\.?[0-2](?:\.\d{1,10}){0,127}$")


def _bad(name: str, why: str) -> DiagnosticRefused:
    return DiagnosticRefused("invalid_arguments", f"{name}: {why}")


def host(name: str, value: Any) -> str:
    """A hostname or an IPv4/IPv6 address; nothing else (no spaces, `;`, `$`, leading `-`)."""
    if not isinstance(value, str) or not value:
        raise _bad(name, "expected a hostname or IP address")
    if value.startswith("-"):
        raise _bad(name, "must not start with '-'")
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        pass
    if not _HOSTNAME.fullmatch(value) or any(part.endswith("-") for part in value.split(".")):
        raise _bad(name, f"{value!r} is not a hostname or IP address")
    return value


def integer(lo: int, hi: int) -> Callable[[str, Any], int]:
    def check(name: str, value: Any) -> int:
        if isinstance(value, bool):
            raise _bad(name, "expected an integer")
        if isinstance(value, str) and re.fullmatch(r"[0-9]{1,9}", value):
            value = int(value)
        if not isinstance(value, int):
            raise _bad(name, "expected an integer")
        if not lo <= value <= hi:
            raise _bad(name, f"must be between {lo} and {hi}")
        return value
    return check


port = integer(1, 65535)


def choice(options: Callable[[], Collection[str]]) -> Callable[[str, Any], str]:
    """One of the names the device's config lists (services, logs, spools, neighbours...)."""
    def check(name: str, value: Any) -> str:
        allowed = options()
        if not isinstance(value, str) or value not in allowed:
            listed = ", ".join(sorted(allowed)) or "none configured"
            raise _bad(name, f"{value!r} is not one of the configured names ({listed})")
        return value
    return check


_BLOCK = re.compile(r"/dev/(?:sd[a-z]{1,3}|hd[a-z]|vd[a-z]{1,3}|xvd[a-z]{1,3}|nvme[0-9]{1,3}"
                    r"(?:n[0-9]{1,3})?|mmcblk[0-9]{1,3}|sg[0-9]{1,3})")


def disk(configured: Callable[[], Collection[str]]) -> Callable[[str, Any], str]:
    """One of the configured disks; with none configured, any whole-disk device node that
    exists (what `smartctl --scan` would find), named plainly."""
    by_name = choice(configured)

    def check(name: str, value: Any) -> str:
        if configured():
            return by_name(name, value)
        if not isinstance(value, str) or not _BLOCK.fullmatch(value):
            raise _bad(name, "expected a disk such as /dev/sda or /dev/nvme0n1")
        if not os.path.exists(value):
            raise _bad(name, f"{value} does not exist here")
        return value
    return check


def oid(name: str, value: Any) -> str:
    if not isinstance(value, str) or not _OID.fullmatch(value):
        raise _bad(name, "expected a numeric OID such as 1.3.6.1.2.1.1")
    return value if value.startswith(".") else "." + value


def url(name: str, value: Any) -> str:
    """An http(s) URL whose host passes `host`; no credentials in it."""
    import httpx

    if not isinstance(value, str) or value.startswith("-") or any(c.isspace() for c in value):
        raise _bad(name, "expected an http:// or https:// URL")
    try:
        u = httpx.URL(value)
    except (httpx.InvalidURL, ValueError):
        raise _bad(name, "expected an http:// or https:// URL") from None
    if u.scheme not in ("http", "https") or not u.host:
        raise _bad(name, "expected an http:// or https:// URL")
    if u.userinfo:
        raise _bad(name, "credentials in URLs are not accepted")
    host(name, u.host)
    return str(u)


def inside(roots: Callable[[], Sequence[Path]]) -> Callable[[str, Any], Path]:
    """A path inside one of the configured roots, after resolving symlinks; `..` is refused."""
    def check(name: str, value: Any) -> Path:
        if not isinstance(value, str) or not value or value.startswith("-") or "\0" in value:
            raise _bad(name, "expected a path")
        if ".." in Path(value).parts:
            raise _bad(name, "'..' is not allowed in paths")
        candidates = roots()
        for root in candidates:
            base = Path(os.path.realpath(root))
            p = Path(value)
            full = Path(os.path.realpath(p if p.is_absolute() else base / p))
            if full == base or full.is_relative_to(base):
                return full
        raise _bad(name, f"{value!r} is not inside a configured root "
                         f"({', '.join(str(r) for r in candidates) or 'none configured'})")
    return check


@dataclass(frozen=True)
class Param:
    name: str
    kind: Callable[[str, Any], Any]
    help: str
    required: bool = False
    default: Any = None


def validate(params: Sequence[Param], args: dict[str, Any],
             defaults: dict[str, Any] | None = None) -> dict[str, Any]:
    """Checked args: unknown names refused, missing ones from `defaults` or the schema."""
    known = {p.name: p for p in params}
    unknown = sorted(set(args) - set(known))
    if unknown:
        raise DiagnosticRefused("invalid_arguments", f"unknown argument(s): {', '.join(unknown)}")
    out: dict[str, Any] = {}
    for p in params:
        if p.name in args:
            out[p.name] = p.kind(p.name, args[p.name])
        elif defaults and p.name in defaults:
            out[p.name] = p.kind(p.name, defaults[p.name])
        elif p.required:
            raise DiagnosticRefused("invalid_arguments", f"{p.name}: required")
        elif p.default is not None:
            out[p.name] = p.default
    return out

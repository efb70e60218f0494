"""The `snmp:` section of agent.yaml: targets (each its own device), trap receiver, limits.

Credentials come inline, from an environment variable (`*_env`) or a file (`*_file`); they are
Secret so they never appear in reprs or logs.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

import msgspec

from fieldwatch.durations import Duration
from fieldwatch.errors import ConfigError, Problem
from fieldwatch.structs import Id, Port, Secret, Strict

AuthProtocol = Literal["MD5", "SHA", "SHA224", "SHA256", "SHA384", "SHA512"]
PrivProtocol = Literal["DES", "3DES", "AES", "AES128", "AES192", "AES256"]


def _secret(where: str, inline: Secret | None, env: str | None,
            file: Path | None) -> str | None:
    """The secret's value, read now (rotation needs no restart)."""
    if env:
        value = os.environ.get(env)
        if value is None:
            raise ConfigError([Problem("<environment>", 0, 0, f"{where}_env: {env} is not set")])
        return value
    if file:
        try:
            return file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError([Problem(str(file), 0, 0,
                                       f"{where}_file: cannot read: {exc.strerror}")]) from None
    return inline.get_secret_value() if inline is not None else None


def _one_source(obj: Strict, name: str) -> None:
    given = [k for k in (name, f"{name}_env", f"{name}_file") if getattr(obj, k) is not None]
    if len(given) > 1:
        raise ValueError(f"{name}: give one of {', '.join(given)}, not several")


class V3User(Strict):
    """An SNMPv3 USM user; authPriv when both keys are given, authNoPriv with the auth key only."""

    user: Annotated[str, msgspec.Meta(min_length=1)]
    auth_protocol: AuthProtocol = "SHA"
    auth_key: Secret | None = None
    auth_key_env: str | None = None
    auth_key_file: Path | None = None
    priv_protocol: PrivProtocol = "AES"
    priv_key: Secret | None = None
    priv_key_env: str | None = None
    priv_key_file: Path | None = None

    def __post_init__(self) -> None:
        _one_source(self, "auth_key")
        _one_source(self, "priv_key")
        has_priv = any(getattr(self, k) is not None
                       for k in ("priv_key", "priv_key_env", "priv_key_file"))
        has_auth = any(getattr(self, k) is not None
                       for k in ("auth_key", "auth_key_env", "auth_key_file"))
        if has_priv and not has_auth:
            raise ValueError("a privacy key needs an auth key too (authPriv)")

    def auth(self) -> str | None:
        return _secret("auth_key", self.auth_key, self.auth_key_env, self.auth_key_file)

    def priv(self) -> str | None:
        return _secret("priv_key", self.priv_key, self.priv_key_env, self.priv_key_file)


class SnmpTarget(Strict):
    """One polled device: where it is, how to log in, which profiles, which fieldwatch device."""

    device: Id
    host: Annotated[str, msgspec.Meta(min_length=1)]
    port: Annotated[int, msgspec.Meta(ge=1, le=65535)] = 161
    site: Id | None = None  # default: the agent's site
    version: Literal["2c", "3"] = "2c"
    community: Secret | None = None  # default "public" when no _env/_file is given
    community_env: str | None = None
    community_file: Path | None = None
    v3: V3User | None = None
    profiles: Annotated[list[str], msgspec.Meta(min_length=1)] = msgspec.field(
        default_factory=lambda: ["system"])
    interval: Duration | None = None  # default: snmp.interval
    timeout: Duration | None = None  # per request; default: snmp.timeout
    retries: Annotated[int, msgspec.Meta(ge=0, le=10)] | None = None

    def __post_init__(self) -> None:
        _one_source(self, "community")
        if self.version == "3" and self.v3 is None:
            raise ValueError("version 3 needs a `v3:` user (user, auth_key, priv_key)")
        if self.version == "2c" and self.v3 is not None:
            raise ValueError("`v3:` is given but version is 2c; set version: \"3\"")

    def community_value(self) -> str:
        value = _secret("community", self.community, self.community_env, self.community_file)
        return "public" if value is None else value


class TrapUser(V3User, kw_only=True):
    """A v3 trap sender's user. Traps are sent by the device's own engine, so its
    snmpEngineID (hex, e.g. 0x80001f8880...) is needed to check the keys."""

    engine_id: Annotated[str, msgspec.Meta(pattern=r"^(0x)?([0-9a-fA-F]{2}){5,32}$")]


class TrapConfig(Strict):
    enabled: bool = False
    host: str = "0.0.0.0"  # noqa: S104 - a trap receiver listens for the network
    port: Port = 1162  # >1024 so it runs without root; 0 picks a free one
    communities: Annotated[list[str], msgspec.Meta(min_length=1)] = msgspec.field(
        default_factory=lambda: ["public"])  # v1/v2c accepted
    v3_users: list[TrapUser] = []  # v3 traps (authNoPriv or authPriv), one per sender engine


class SnmpConfig(Strict):
    """Defaults apply to every target that does not set its own."""

    targets: list[SnmpTarget] = []
    interval: Duration = 60.0
    timeout: Duration = 2.0
    retries: Annotated[int, msgspec.Meta(ge=0, le=10)] = 1
    concurrency: Annotated[int, msgspec.Meta(ge=1, le=4096)] = 64  # in flight, all targets
    max_repetitions: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 50
    profiles_dir: list[Path] = []  # searched before the shipped config/snmp-profiles
    traps: TrapConfig = TrapConfig()

    def __post_init__(self) -> None:
        seen: set[str] = set()
        for t in self.targets:
            if t.device in seen:
                raise ValueError(f"targets: two SNMP targets publish as device {t.device!r}")
            seen.add(t.device)

    @property
    def active(self) -> bool:
        return bool(self.targets) or self.traps.enabled

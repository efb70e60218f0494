"""Config files become frozen, validated structs once, at the door.

Config sections are msgspec structs (`fieldwatch.structs`). Collector-side files may still be
pydantic models (`fieldwatch.models`); `load_config` takes either, and a struct can sit inside
such a model (the collector's `broker:` is a BrokerConfig).

Every problem is reported at once as `file:line:col: key: message`; unknown keys are errors.
Secrets are read from an environment variable or a file and never appear in reprs or logs.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import TypeVar

import msgspec

from fieldwatch.durations import Duration
from fieldwatch.errors import ConfigError, LocatedError, Problem
from fieldwatch.structs import Port, Secret, Strict, convert
from fieldwatch.yamlmarks import Loaded, load_yaml_file

M = TypeVar("M")


def load_config(model: type[M], path: str | Path) -> M:
    """Load and validate one YAML config file, or raise ConfigError with located problems."""
    try:
        doc = load_yaml_file(path)
    except LocatedError as exc:
        raise ConfigError(exc.problems) from None
    return validate_doc(model, doc)


def validate_doc(model: type[M], doc: Loaded) -> M:
    data = {} if doc.data is None else doc.data
    if not isinstance(data, dict):
        raise ConfigError([doc.problem((), "expected a mapping of settings at the top level")])
    if isinstance(model, type) and issubclass(model, msgspec.Struct):
        return convert(model, data, doc)  # type: ignore[return-value]
    from fieldwatch.models import validate  # a pydantic model (collector-side files)

    return validate(model, doc, data, error=ConfigError)  # type: ignore[type-var]


# -- the broker section, shared by agent and collector ----------------------------------------


class TlsConfig(Strict):
    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None
    insecure: bool = False  # skip hostname check; for lab setups only


class BrokerConfig(Strict):
    """Where the MQTT broker is and how to log in. Password: env var or file, never inline."""

    host: str = "127.0.0.1"
    port: Port = 1883
    username: str | None = None
    password_env: str | None = None
    password_file: Path | None = None
    tls: TlsConfig | None = None
    keepalive: Duration = 30.0

    def __post_init__(self) -> None:
        if self.password_env and self.password_file:
            raise ValueError("give password_env or password_file, not both")

    def password(self) -> Secret | None:
        """The password, read now from its env var or file (so rotation needs no restart)."""
        if self.password_env:
            value = os.environ.get(self.password_env)
            if value is None:
                raise ConfigError([Problem("<environment>", 0, 0,
                                           f"broker.password_env: {self.password_env} is not set")])
            return Secret(value)
        if self.password_file:
            return Secret(self.password_file.read_text(encoding="utf-8").strip())
        return None


def default_device_id() -> str:
    return socket.gethostname().split(".")[0] or "localhost"

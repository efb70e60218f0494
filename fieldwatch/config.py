"""Config files become frozen, validated models once, at the door.

Every problem is reported at once as `file:line:col: key: message`; unknown keys are errors.
Secrets are read from an environment variable or a file and never appear in reprs or logs.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Annotated, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr, model_validator

from fieldwatch.durations import Duration
from fieldwatch.errors import ConfigError, LocatedError, Problem
from fieldwatch.wire import valid_id
from fieldwatch.yamlmarks import load_yaml_file, validate


def _check_id(text: str) -> str:
    if not valid_id(text):
        raise ValueError(f"{text!r} must be 1-128 characters without '/', '+' or '#'")
    return text


Id = Annotated[str, AfterValidator(_check_id)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TlsConfig(Strict):
    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None
    insecure: bool = False  # skip hostname check; for lab setups only


class BrokerConfig(Strict):
    """Where the MQTT broker is and how to log in. Password: env var or file, never inline."""

    host: str = "127.0.0.1"
    port: int = Field(1883, ge=0, le=65535)
    username: str | None = None
    password_env: str | None = None
    password_file: Path | None = None
    tls: TlsConfig | None = None
    keepalive: Duration = 30.0

    @model_validator(mode="after")
    def _one_password_source(self) -> BrokerConfig:
        if self.password_env and self.password_file:
            raise ValueError("give password_env or password_file, not both")
        return self

    def password(self) -> SecretStr | None:
        """The password, read now from its env var or file (so rotation needs no restart)."""
        if self.password_env:
            value = os.environ.get(self.password_env)
            if value is None:
                raise ConfigError([Problem("<environment>", 0, 0,
                                           f"broker.password_env: {self.password_env} is not set")])
            return SecretStr(value)
        if self.password_file:
            return SecretStr(self.password_file.read_text(encoding="utf-8").strip())
        return None


T = TypeVar("T", bound=BaseModel)


def load_config(model: type[T], path: str | Path) -> T:
    """Load and validate one YAML config file, or raise ConfigError with located problems."""
    try:
        doc = load_yaml_file(path)
    except LocatedError as exc:
        raise ConfigError(exc.problems) from None
    data = {} if doc.data is None else doc.data
    if not isinstance(data, dict):
        raise ConfigError([doc.problem((), "expected a mapping of settings at the top level")])
    return validate(model, doc, data, error=ConfigError)


def default_device_id() -> str:
    return socket.gethostname().split(".")[0] or "localhost"

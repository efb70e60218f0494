"""Config sections as msgspec structs, validated with every problem located.

Validating with msgspec imports no pydantic, which keeps the agent (installed on every
monitored machine) small. msgspec stops at its first error; `check` drops each offending value
from a copy of the data and runs again, so one run reports every problem, each with the path of
its value. A `__post_init__` validator raises ValueError("key: message") to point at one of
its struct's keys.
"""

from __future__ import annotations

import copy
import re
import types
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar

import msgspec

from fieldwatch.durations import Duration, parse_duration
from fieldwatch.errors import ConfigError
from fieldwatch.yamlmarks import Loaded, PathKey


class Strict(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """A config section: unknown keys are errors and values never change after loading."""

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: Any) -> Any:
        from fieldwatch.models import struct_schema  # only when a pydantic model holds one

        return struct_schema(cls)


_ID_PATTERN = "^[^/+#\x00]{1,128}$"  # wire.valid_id: usable as one MQTT topic level
Id = typing.Annotated[str, msgspec.Meta(pattern=_ID_PATTERN)]
"""A device or site id."""


class Secret:
    """A secret string that shows as `**********` in reprs, str() and logs."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get_secret_value(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    def __str__(self) -> str:
        return "**********"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


_KINDS = {"int": "an integer", "float": "a number", "str": "a string", "bool": "true or false",
          "array": "a list", "object": "a mapping", "null": "nothing"}


def _kind(obj: object) -> str:
    for t, word in ((bool, "bool"), (int, "int"), (float, "float"), (str, "str"),
                    (list, "array"), (dict, "object")):
        if isinstance(obj, t):
            return _KINDS[word]
    return "nothing" if obj is None else type(obj).__name__


def _dec_hook(tp: type, obj: Any) -> Any:
    """Values of the config types msgspec does not know; ValueError becomes a located problem."""
    if tp is Duration:
        if not isinstance(obj, str | int | float):
            raise ValueError("expected a duration such as 30s, 5m, 1h or 7d")
        return Duration(parse_duration(obj))
    if tp is not Path and tp is not Secret:
        raise NotImplementedError(tp)
    if isinstance(obj, tp):  # built in code, not read from a file
        return obj
    if not isinstance(obj, str):
        raise ValueError(f"expected a string, got {_kind(obj)}")
    return Secret(obj) if tp is Secret else Path(obj)


# -- turning msgspec's first error into a located problem --------------------------------------

_AT = re.compile(r"^(?P<msg>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.S)
_STEP = re.compile(r"\.([^.\[]+)|\[(\d+)\]|\[\.\.\.\]")
_FIELD_MSG = re.compile(r"^(?P<keys>[A-Za-z_]\w*(?:\.[\w@-]+)*): (?P<msg>.*)$", re.S)


def _path(text: str) -> PathKey:
    """`.a.b[0].c` -> ('a', 'b', 0, 'c'); stops at a dict key msgspec does not name (`[...]`)."""
    out: list[str | int] = []
    for m in _STEP.finditer(text):
        if m.group(1) is not None:
            out.append(m.group(1))
        elif m.group(2) is not None:
            out.append(int(m.group(2)))
        else:
            break
    return tuple(out)


def _unwrap(tp: Any) -> list[Any]:
    """The members of a union (or the type itself), without Annotated."""
    if typing.get_origin(tp) is typing.Annotated:
        tp = typing.get_args(tp)[0]
    if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union:
        return [m for arg in typing.get_args(tp) for m in _unwrap(arg)]
    return [tp]


def _type_at(model: type, path: PathKey) -> Any:
    """The declared type of the value at `path`, or None when it cannot be told."""
    tp: Any = model
    for step in path:
        found = None
        for member in _unwrap(tp):
            origin = typing.get_origin(member)
            if isinstance(step, str) and isinstance(member, type) and issubclass(
                    member, msgspec.Struct):
                found = typing.get_type_hints(member, include_extras=True).get(step)
            elif isinstance(step, int) and origin is list:
                found = typing.get_args(member)[0]
            elif isinstance(step, str) and origin is dict:
                found = typing.get_args(member)[1]
            if found is not None:
                break
        if found is None:
            return None
        tp = found
    return tp


def _readable(message: str, path: PathKey, model: type) -> tuple[PathKey, str, bool]:
    """msgspec's message in operators' words: (path of the value, message, located at key)."""
    if m := re.fullmatch(r"Object contains unknown field `(.*)`", message):
        return ((*path, m.group(1)),
                "unknown key (check spelling; see the commented example config)", True)
    if m := re.fullmatch(r"Object missing required field `(.*)`", message):
        return (*path, m.group(1)), "required key is missing", False
    if m := re.fullmatch(r"Invalid enum value (.*)", message):
        choices = [a for t in _unwrap(_type_at(model, path))
                   if typing.get_origin(t) is Literal for a in typing.get_args(t)]
        return path, f"{m.group(1)} is not one of: {', '.join(map(str, choices))}", False
    if message == f"Expected `str` matching regex {_ID_PATTERN!r}":
        return path, "must be 1-128 characters without '/', '+' or '#'", False
    if m := re.fullmatch(r"Expected `(\w+)`(.*?)(?:, got `(\w+)`)?", message):
        got = f", got {_KINDS.get(m.group(3), m.group(3))}" if m.group(3) else ""
        return path, f"expected {_KINDS.get(m.group(1), m.group(1))}{m.group(2)}{got}", False
    # a validator's own words; "key: message" points at one of the struct's keys
    if (m := _FIELD_MSG.match(message)) and isinstance(t := _type_at(model, path), type) \
            and issubclass(t, msgspec.Struct) \
            and m.group("keys").split(".")[0] in t.__struct_fields__:
        return (*path, *m.group("keys").split(".")), m.group("msg"), False
    return path, message, False


def explain(exc: msgspec.ValidationError, model: type) -> tuple[PathKey, str, bool]:
    """(path, message, at_key) of a msgspec validation error against `model`."""
    m = _AT.match(str(exc))
    assert m is not None  # the pattern matches any text
    return _readable(m.group("msg"), _path(m.group("path") or ""), model)


def describe(path: Sequence[str | int], message: str) -> str:
    loc = ".".join(str(p) for p in path)
    return f"{loc}: {message}" if loc else message


def _drop(data: Any, path: PathKey) -> PathKey | None:
    """Remove the innermost mapping key or list item on `path` that exists; its path, or None
    when nothing on the path can be removed."""
    for cut in range(len(path), 0, -1):
        parent, step = data, path[cut - 1]
        for s in path[:cut - 1]:
            try:
                parent = parent[s]
            except (KeyError, IndexError, TypeError):
                parent = None
                break
        if isinstance(parent, dict) and step in parent or isinstance(parent, list) \
                and isinstance(step, int) and 0 <= step < len(parent):
            del parent[step]
            return path[:cut]
    return None


def _original(path: PathKey, removed: dict[PathKey, list[int]]) -> PathKey:
    """A path in the data with items removed, as a path in the data as written."""
    out: list[str | int] = []
    for step in path:
        if isinstance(step, int):
            for gone in sorted(removed.get(tuple(out), [])):
                step += gone <= step
        out.append(step)
    return tuple(out)


S = TypeVar("S", bound=msgspec.Struct)
Issue = tuple[PathKey, str, bool]  # path of the value, message, located at the key
_MAX_PROBLEMS = 50


def check(model: type[S], data: Any) -> tuple[S | None, list[Issue]]:
    """`data` as a `model`, or every problem with it.

    msgspec stops at the first error; each one found is dropped from a copy of the data and
    validation runs again, so one run reports them all.
    """
    work, issues = data, []
    cuts: set[PathKey] = set()  # what was removed, as paths in `data`
    removed: dict[PathKey, list[int]] = {}  # list path -> indexes of the items removed
    for _ in range(_MAX_PROBLEMS):
        try:
            result = msgspec.convert(work, model, dec_hook=_dec_hook)
        except msgspec.ValidationError as exc:
            at, message, at_key = explain(exc, model)
            path = _original(at, removed)
            # a problem with a value we cut something out of may be that cut's doing
            if not any(c[:len(path)] == path for c in cuts):
                issues.append((path, message, at_key))
            if work is data:
                work = copy.deepcopy(data)
            cut = _drop(work, at)
            if cut is None:
                break
            original = _original(cut, removed)
            cuts.add(original)
            if isinstance(original[-1], int):
                removed.setdefault(original[:-1], []).append(original[-1])
        else:
            return (None if issues else result), issues
    return None, issues


def convert(model: type[S], data: Any, doc: Loaded | None = None, prefix: PathKey = ()) -> S:
    """Validate `data` into `model`, or raise ConfigError located in `doc` (when given)."""
    result, issues = check(model, data)
    if result is None:
        where = doc or Loaded(data, {}, "<config>")
        raise ConfigError([where.problem((*prefix, *path), describe(path, message), at_key)
                           for path, message, at_key in issues])
    return result


Port = typing.Annotated[int, msgspec.Meta(ge=0, le=65535)]

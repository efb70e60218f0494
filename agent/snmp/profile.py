"""SNMP profiles: YAML files mapping scalars and table columns to metrics and labels.

A profile is loaded once: text → validated model → `Profile` with numeric OID tuples. MIB names
(`SNMPv2-MIB::sysUpTime.0`) are resolved here, once, from the MIB modules pysnmp ships; polling
never looks anything up. Mistakes are reported as `file:line:col: message`, all at once.
The format is documented in docs/snmp.md.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, model_validator

from fieldwatch.errors import ConfigError, LocatedError, Problem
from fieldwatch.models import StrictModel, validate
from fieldwatch.yamlmarks import Loaded, load_yaml_file

Oid = tuple[int, ...]
_NUMERIC = re.compile(r"^\.?\d+(\.\d+)+$")
_NAMED = re.compile(r"^([A-Za-z][\w-]*)::([A-Za-z][\w-]*)((?:\.\d+)*)$")
_METRIC = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$")
_LABEL = re.compile(r"^[a-z_][a-z0-9_]*$")


def _check_oid(text: object) -> str:
    if isinstance(text, int | float) and not isinstance(text, bool):
        raise ValueError(f"{text!r} is not an OID: YAML read it as a number; quote it")
    if not isinstance(text, str):
        raise ValueError("an OID must be a string such as 1.3.6.1.2.1.1.3.0")
    if not (_NUMERIC.match(text) or _NAMED.match(text)):
        raise ValueError(f"{text!r} is not an OID: write 1.3.6.1.2.1.1.3.0 or "
                         "MODULE::name.suffix (quote it if YAML reads it as a number)")
    return text


def _check_metric(text: str) -> str:
    if not _METRIC.match(text):
        raise ValueError(f"{text!r}: metric names are dotted lower_case words (if.oper_up)")
    return text


def _check_enum_or_oid(value: object) -> int | str:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return _check_oid(value)


OidText = Annotated[str, BeforeValidator(_check_oid)]
EnumOrOid = Annotated[int | str, BeforeValidator(_check_enum_or_oid)]
MetricName = Annotated[str, AfterValidator(_check_metric)]


class ColumnRef(StrictModel):
    """A column (or scalar) whose value, optionally mapped, feeds a label, factor or filter."""

    oid: OidText
    map: dict[int, float | str] | None = None


class Where(StrictModel):
    """Only rows whose column holds one of `equals`: integers (enums), or OIDs for columns whose
    values are OIDs (hrStorageType)."""

    oid: OidText
    equals: list[EnumOrOid] = Field(min_length=1)


class MetricSpec(StrictModel):
    oid: OidText
    metric: MetricName
    scale: float = 1.0  # multiply (sysUpTime hundredths → seconds: 0.01)
    map: dict[int, float] | None = None  # raw integer → value (enums: 1 → 1, others → default)
    default: float | None = None  # with `map`: value for unmapped raw values (None: no sample)
    factors: list[ColumnRef] = []  # multiply by these columns of the same row (units, scale)
    divide_by: OidText | None = None  # ratio to this column of the same row (0 → no sample)
    where: Where | None = None  # only rows whose column has one of these values
    fallback: OidText | None = None  # column read where `oid` has no value (32-bit counters)

    @model_validator(mode="after")
    def _check(self) -> MetricSpec:
        if self.default is not None and self.map is None:
            raise ValueError("`default` only applies together with `map`")
        return self


class ScalarSpec(MetricSpec):
    @model_validator(mode="after")
    def _scalar(self) -> ScalarSpec:
        if self.factors or self.divide_by or self.where or self.fallback:
            raise ValueError(f"scalar {self.metric}: factors, divide_by, where and fallback "
                             "are for table columns")
        return self


class TableSpec(StrictModel):
    name: str = Field(min_length=1)
    index_label: str | None = None  # label carrying the row index (ifindex)
    labels: dict[str, OidText | list[OidText] | ColumnRef] = {}  # list: first column present
    metrics: list[MetricSpec] = Field(min_length=1)

    @model_validator(mode="after")
    def _check(self) -> TableSpec:
        for name in [*self.labels, *([self.index_label] if self.index_label else [])]:
            if not _LABEL.match(name):
                raise ValueError(f"label {name!r}: use lower_case letters, digits and _")
        return self


class ProfileSpec(StrictModel):
    name: str = Field(min_length=1)
    description: str = ""
    scalars: list[ScalarSpec] = []
    tables: list[TableSpec] = []

    @model_validator(mode="after")
    def _check(self) -> ProfileSpec:
        if not self.scalars and not self.tables:
            raise ValueError("a profile needs `scalars` or `tables`")
        return self


# -- compiled form: what the poller and the mapper use ------------------------------------


@dataclass(frozen=True)
class Ref:
    oid: Oid
    map: dict[int, float | str] | None = None


@dataclass(frozen=True)
class Metric:
    oid: Oid
    name: str
    scale: float = 1.0
    map: dict[int, float] | None = None
    default: float | None = None
    factors: tuple[Ref, ...] = ()
    divide_by: Oid | None = None
    where: tuple[Oid, frozenset[int | str]] | None = None  # OID values as dotted text
    fallback: Oid | None = None


@dataclass(frozen=True)
class Table:
    name: str
    index_label: str | None
    labels: tuple[tuple[str, tuple[Ref, ...]], ...]
    metrics: tuple[Metric, ...]

    @property
    def columns(self) -> tuple[Oid, ...]:
        """Every column to walk, in a stable order without repeats."""
        cols: list[Oid] = []
        for m in self.metrics:
            cols.append(m.oid)
            cols.extend(f.oid for f in m.factors)
            if m.divide_by:
                cols.append(m.divide_by)
            if m.where:
                cols.append(m.where[0])
            if m.fallback:
                cols.append(m.fallback)
        for _, refs in self.labels:
            cols.extend(r.oid for r in refs)
        return tuple(dict.fromkeys(cols))


@dataclass(frozen=True)
class Profile:
    name: str
    file: str
    scalars: tuple[Metric, ...]
    tables: tuple[Table, ...]

    @property
    def oid_count(self) -> int:
        return len(self.scalars) + sum(len(t.columns) for t in self.tables)


# -- loading ------------------------------------------------------------------------------


class _Resolver:
    """Turns OID text into tuples; MIB names through pysnmp's shipped modules, imported lazily."""

    def __init__(self) -> None:
        self._builder: Any = None

    def __call__(self, text: str) -> Oid:
        if _NUMERIC.match(text):
            return tuple(int(p) for p in text.lstrip(".").split("."))
        m = _NAMED.match(text)
        assert m is not None  # validated already
        module, symbol, suffix = m.groups()
        base = self._symbol(module, symbol)
        return base + tuple(int(p) for p in suffix.split(".")[1:])

    def _symbol(self, module: str, symbol: str) -> Oid:
        if self._builder is None:
            from pysnmp.smi import builder

            self._builder = builder.MibBuilder()
        from pysnmp.smi.error import MibNotFoundError, SmiError

        try:
            self._builder.load_modules(module)
        except MibNotFoundError:
            raise ValueError(f"MIB module {module} is not available (pysnmp ships only the "
                             "SNMPv2 and SNMP framework MIBs); use the numeric OID") from None
        try:
            (obj,) = self._builder.import_symbols(module, symbol)
        except SmiError:
            raise ValueError(f"{module} has no object named {symbol}") from None
        return tuple(obj.name)


def _compile(spec: ProfileSpec, doc: Loaded, resolve: _Resolver) -> Profile:
    problems: list[Problem] = []

    def oid(text: str, path: Sequence[str | int]) -> Oid:
        try:
            return resolve(text)
        except ValueError as exc:
            problems.append(doc.problem(path, str(exc)))
            return ()

    def ref(r: str | ColumnRef, path: Sequence[str | int]) -> Ref:
        if isinstance(r, str):
            return Ref(oid(r, path))
        return Ref(oid(r.oid, (*path, "oid")), r.map)

    def metric(m: MetricSpec, path: tuple[str | int, ...]) -> Metric:
        return Metric(
            oid=oid(m.oid, (*path, "oid")), name=m.metric, scale=m.scale, map=m.map,
            default=m.default,
            factors=tuple(ref(f, (*path, "factors", i)) for i, f in enumerate(m.factors)),
            divide_by=oid(m.divide_by, (*path, "divide_by")) if m.divide_by else None,
            where=((oid(m.where.oid, (*path, "where", "oid")),
                    frozenset(v if isinstance(v, int) else
                              ".".join(map(str, oid(v, (*path, "where", "equals", i))))
                              for i, v in enumerate(m.where.equals)))
                   if m.where else None),
            fallback=oid(m.fallback, (*path, "fallback")) if m.fallback else None)

    scalars = tuple(metric(m, ("scalars", i)) for i, m in enumerate(spec.scalars))
    tables = []
    for ti, t in enumerate(spec.tables):
        path = ("tables", ti)
        labels = []
        for name, value in t.labels.items():
            lpath = (*path, "labels", name)
            if isinstance(value, list):
                refs = tuple(ref(v, (*lpath, i)) for i, v in enumerate(value))
            else:
                refs = (ref(value, lpath),)
            labels.append((name, refs))
        tables.append(Table(t.name, t.index_label, tuple(labels),
                            tuple(metric(m, (*path, "metrics", i))
                                  for i, m in enumerate(t.metrics))))
    if problems:
        raise ConfigError(problems)
    return Profile(spec.name, doc.file, scalars, tuple(tables))


def load_profile(path: str | Path, resolver: _Resolver | None = None) -> Profile:
    """Load one profile file, or raise ConfigError with every located problem."""
    try:
        doc = load_yaml_file(path)
    except LocatedError as exc:
        raise ConfigError(exc.problems) from None
    if not isinstance(doc.data, dict):
        raise ConfigError([doc.problem((), "a profile is a mapping with name, scalars, tables")])
    spec = validate(ProfileSpec, doc, error=ConfigError)
    if spec.name != Path(path).stem:
        raise ConfigError([doc.problem(("name",), f"name {spec.name!r} must match the file "
                                                  f"name {Path(path).stem!r}")])
    return _compile(spec, doc, resolver or _Resolver())


def shipped_profiles_dir() -> Path:
    return Path(str(resources.files("fieldwatch.default_config"))) / "snmp-profiles"


def load_profiles(names: Iterable[str], dirs: Sequence[Path] = ()) -> dict[str, Profile]:
    """Load each named profile from the first dir that has `<name>.yaml` (shipped dir last)."""
    search = [*dirs, shipped_profiles_dir()]
    resolver = _Resolver()
    out: dict[str, Profile] = {}
    problems: list[Problem] = []
    for name in dict.fromkeys(names):
        found = next((d / f"{name}.yaml" for d in search if (d / f"{name}.yaml").is_file()), None)
        if found is None:
            problems.append(Problem("<snmp>", 0, 0, f"SNMP profile {name!r} not found in "
                                    + ", ".join(str(d) for d in search)))
            continue
        try:
            out[name] = load_profile(found, resolver)
        except ConfigError as exc:
            problems.extend(exc.problems)
    if problems:
        raise ConfigError(problems)
    return out

"""Pure mapping from polled SNMP values to samples, following a compiled profile.

Values arrive as plain Python (int, float, str, or None for "no such object"), already decoded
at the network edge, so this module is testable without any SNMP library.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from fieldwatch.agent.snmp.profile import Metric, Oid, Profile, Ref, Table

from fieldwatch.wire import Sample

Value = int | float | str | None
Column = Mapping[Oid, Value]  # row index suffix -> value


def number(value: Value) -> float | None:
    """A numeric reading, or None; strings that hold a number ("0.15", UCD load) count."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return float(value)
    try:
        f = float(value) if isinstance(value, float) else float(value.strip())
    except ValueError:
        return None
    return f if math.isfinite(f) else None


def transform(m: Metric, raw: Value) -> float | None:
    """Apply `map`/`default` then `scale`; None means: no sample."""
    x = number(raw)
    if x is None:
        return None
    if m.map is not None:
        mapped = m.map.get(int(x)) if x == int(x) else None
        x = m.default if mapped is None else mapped
        if x is None:
            return None
    return x * m.scale


def _ref_value(ref: Ref, raw: Value) -> Value:
    if ref.map is None or raw is None:
        return raw
    x = number(raw)
    if x is None or x != int(x):
        return None
    return ref.map.get(int(x))


def label_text(value: Value) -> str:
    if isinstance(value, float) and value == int(value):
        return str(int(value))
    return str(value)


def scalar_samples(profile: Profile, values: Mapping[Oid, Value]) -> list[Sample]:
    out = []
    for m in profile.scalars:
        v = transform(m, values.get(m.oid))
        if v is not None:
            out.append(Sample(name=m.name, value=v))
    return out


def index_text(index: Oid) -> str:
    return ".".join(str(i) for i in index)


def _selected(want: frozenset[int | str], raw: Value) -> bool:
    """`where`: an OID value by its dotted text, anything else as an integer enum."""
    if isinstance(raw, str) and raw.lstrip(".") in want:
        return True
    w = number(raw)
    return w is not None and w == int(w) and int(w) in want


def _rows(m: Metric, columns: Mapping[Oid, Column]) -> Mapping[Oid, Value]:
    """The metric's column by row; rows without a value there read the `fallback` column."""
    primary = columns.get(m.oid, {})
    if m.fallback is None:
        return primary
    rows = dict(primary)
    for index, raw in columns.get(m.fallback, {}).items():
        if rows.get(index) is None:
            rows[index] = raw
    return rows


def table_samples(table: Table, columns: Mapping[Oid, Column]) -> list[Sample]:
    """One sample per metric and row; rows are the indexes of each metric's own column (and of
    its fallback column)."""
    out = []
    label_cache: dict[Oid, dict[str, str]] = {}

    def labels(index: Oid) -> dict[str, str]:
        got = label_cache.get(index)
        if got is None:
            got = {}
            if table.index_label:
                got[table.index_label] = index_text(index)
            for name, refs in table.labels:
                for ref in refs:
                    v = _ref_value(ref, columns.get(ref.oid, {}).get(index))
                    if v is not None and v != "":
                        got[name] = label_text(v)
                        break
            label_cache[index] = got
        return got

    for m in table.metrics:
        for index, raw in _rows(m, columns).items():
            if m.where is not None and not _selected(m.where[1],
                                                     columns.get(m.where[0], {}).get(index)):
                continue
            v = transform(m, raw)
            if v is None:
                continue
            for f in m.factors:
                fv = number(_ref_value(f, columns.get(f.oid, {}).get(index)))
                if fv is None:
                    v = None
                    break
                v *= fv
            if v is not None and m.divide_by is not None:
                d = number(columns.get(m.divide_by, {}).get(index))
                v = v / d if d else None
            if v is not None and math.isfinite(v):
                out.append(Sample(name=m.name, value=v, labels=labels(index)))
    return out


def profile_samples(profile: Profile, scalars: Mapping[Oid, Value],
                    columns: Mapping[Oid, Column]) -> list[Sample]:
    out = scalar_samples(profile, scalars)
    for t in profile.tables:
        out.extend(table_samples(t, columns))
    return out

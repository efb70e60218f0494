"""Profile loading: shipped profiles compile; mistakes are reported as file:line:col."""

from __future__ import annotations

from pathlib import Path

import pytest
from fieldwatch.agent.snmp.profile import load_profile, load_profiles, shipped_profiles_dir
from hypothesis import given, settings
from hypothesis import strategies as st

from fieldwatch.errors import ConfigError

SHIPPED = ["system", "if-mib", "host-resources", "entity-sensor", "ups-mib", "eaton-xups"]


def test_every_shipped_profile_loads_with_numeric_oids() -> None:
    profiles = load_profiles(SHIPPED)
    assert sorted(profiles) == sorted(SHIPPED)
    assert {p.stem for p in shipped_profiles_dir().glob("*.yaml")} == set(SHIPPED)
    system = profiles["system"]
    assert system.scalars[0].oid == (1, 3, 6, 1, 2, 1, 1, 3, 0)
    assert system.scalars[0].name == "snmp.uptime_seconds"
    ifmib = profiles["if-mib"].tables[0]
    assert {m.name for m in ifmib.metrics} >= {"if.oper_up", "if.admin_up",
                                               "if.in_octets_total", "if.out_octets_total",
                                               "if.in_errors_total", "if.in_discards_total"}
    assert ifmib.index_label == "ifindex" and ifmib.labels[0][0] == "ifname"


def _write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / f"{name}.yaml"
    p.write_text(text)
    return p


@pytest.mark.parametrize(("text", "line", "col", "message"), [
    ("name: bad\nscalars:\n  - oid: 1.3.6.1.2.1.1.3.0\n    metric: Uptime\n",
     4, 13, "metric names are dotted"),
    ("name: bad\nscalars:\n  - oid: 1.3\n    metric: x.y\n", 3, 10, "not an OID"),
    ("name: bad\nscalars:\n  - oid: 1.3.6.1\n    metric: x.y\n    scael: 2\n",
     5, 5, "unknown key"),
    ("name: bad\ntables:\n  - name: t\n    metrics:\n      - oid: 1.3.6.1\n"
     "        metric: a.b\n        default: 0\n", 5, 9, "`default` only applies"),
    ("name: bad\nscalars:\n  - oid: 1.3.6.1\n    metric: x.y\n  - oid: [1]\n    metric: x.z\n",
     5, 10, "must be a string"),
    ("name: bad\nscalars: [\n", 3, 1, "invalid YAML"),
    ("name: other\nscalars:\n  - {oid: 1.3.6.1, metric: x.y}\n", 1, 7, "must match the file"),
    ("name: bad\nscalars:\n  - {oid: 1.3.6.1, metric: x.y, fallback: 1.3.6.2}\n", 3, 5,
     "fallback are for table columns"),
    ("name: bad\ntables:\n  - name: t\n    metrics:\n      - oid: 1.3.6.1\n"
     "        metric: a.b\n        where: {oid: 1.3.6.2, equals: [1.5]}\n", 7, 40,
     "not an OID"),
])
def test_profile_mistakes_are_located(tmp_path: Path, text: str, line: int, col: int,
                                      message: str) -> None:
    path = _write(tmp_path, "bad", text)
    with pytest.raises(ConfigError) as exc:
        load_profile(path)
    first = exc.value.problems[0]
    assert (first.file, first.line, first.col) == (str(path), line, col), str(exc.value)
    assert message in first.message
    assert str(exc.value).startswith(f"{path}:{line}:{col}: ")


def test_all_problems_are_reported_at_once(tmp_path: Path) -> None:
    path = _write(tmp_path, "many", "name: many\nscalars:\n  - {oid: x, metric: a.b}\n"
                                    "  - {oid: 1.3.6, metric: B}\n")
    with pytest.raises(ConfigError) as exc:
        load_profile(path)
    assert [(p.line, p.message.split(":")[0]) for p in exc.value.problems] == [
        (3, "scalars.0.oid"), (4, "scalars.1.metric")]


def test_mib_names_resolve_once_at_load(tmp_path: Path) -> None:
    path = _write(tmp_path, "named", "name: named\nscalars:\n"
                                     "  - {oid: 'SNMPv2-MIB::sysUpTime.0', metric: up.t}\n")
    assert load_profile(path).scalars[0].oid == (1, 3, 6, 1, 2, 1, 1, 3, 0)


def test_unknown_mib_names_are_located_errors(tmp_path: Path) -> None:
    path = _write(tmp_path, "named", "name: named\nscalars:\n"
                                     "  - {oid: 'IF-MIB::ifNumber.0', metric: a.b}\n"
                                     "  - {oid: 'SNMPv2-MIB::noSuchThing.0', metric: a.c}\n")
    with pytest.raises(ConfigError) as exc:
        load_profile(path)
    (a, b) = exc.value.problems
    assert (a.line, b.line) == (3, 4)
    assert "MIB module IF-MIB is not available" in a.message
    assert "SNMPv2-MIB has no object named noSuchThing" in b.message


def test_missing_profile_names_every_place_searched(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="'nope' not found in .*snmp-profiles"):
        load_profiles(["nope"], [tmp_path])


def test_operator_dir_overrides_shipped_profile(tmp_path: Path) -> None:
    _write(tmp_path, "system", "name: system\nscalars:\n  - {oid: 1.3.6.1.2.1.1.7.0, "
                               "metric: snmp.services}\n")
    assert load_profiles(["system"], [tmp_path])["system"].scalars[0].name == "snmp.services"


@given(st.text(max_size=300))
@settings(max_examples=60, deadline=None)
def test_any_text_is_a_profile_or_located_errors(text: str) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "fuzz.yaml"
        path.write_text(text, encoding="utf-8")
        try:
            load_profile(path)
        except ConfigError as exc:
            assert exc.problems and all(p.file == str(path) for p in exc.problems)


@pytest.mark.parametrize(("text", "where"), [
    ("name: bad\nscalars: \x1f\n", "2:10"),        # control character: the YAML reader refuses
    ("name: bad\nwhen: 2024-13-45\n", "2:7"),      # a timestamp that is no date
])
def test_yaml_level_mistakes_are_located_too(tmp_path: Path, text: str, where: str) -> None:
    path = _write(tmp_path, "bad", text)
    with pytest.raises(ConfigError, match=f"^{path}:{where}: invalid"):
        load_profile(path)

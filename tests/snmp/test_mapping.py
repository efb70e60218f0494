"""Pure mapping of polled values to samples, following the shipped profiles."""

from __future__ import annotations

import math

from fieldwatch.agent.snmp.mapping import number, profile_samples, transform
from fieldwatch.agent.snmp.profile import Metric, load_profiles
from hypothesis import given
from hypothesis import strategies as st

P = load_profiles(["system", "if-mib", "host-resources", "entity-sensor", "ups-mib"])
IF = (1, 3, 6, 1, 2, 1, 2, 2, 1)
IFX = (1, 3, 6, 1, 2, 1, 31, 1, 1, 1)
HR = (1, 3, 6, 1, 2, 1, 25, 2, 3, 1)


def _by(samples, name):  # type: ignore[no-untyped-def]
    return {tuple(sorted(s.labels.items())): s.value for s in samples if s.name == name}


def test_system_uptime_ticks_become_seconds() -> None:
    out = profile_samples(P["system"], {(1, 3, 6, 1, 2, 1, 1, 3, 0): 123456}, {})
    assert [(s.name, s.value) for s in out] == [("snmp.uptime_seconds", 1234.56)]


def test_if_mib_status_mapping_labels_and_fallback_name() -> None:
    cols = {IF + (8,): {(1,): 1, (2,): 2, (3,): 7}, IF + (7,): {(1,): 1, (2,): 1, (3,): 2},
            IFX + (1,): {(1,): "Gi0/1", (2,): ""}, IF + (2,): {(2,): "eth1", (3,): "eth2"},
            IFX + (6,): {(1,): 2**63}}
    out = profile_samples(P["if-mib"], {}, cols)
    assert _by(out, "if.oper_up") == {
        (("ifindex", "1"), ("ifname", "Gi0/1")): 1.0,
        (("ifindex", "2"), ("ifname", "eth1")): 0.0,  # empty ifName: falls back to ifDescr
        (("ifindex", "3"), ("ifname", "eth2")): 0.0}
    assert _by(out, "if.admin_up")[(("ifindex", "3"), ("ifname", "eth2"))] == 0.0
    assert _by(out, "if.in_octets_total") == {(("ifindex", "1"), ("ifname", "Gi0/1")): 2.0**63}


HR_TYPE = "1.3.6.1.2.1.25.2.1."  # hrStorageTypes: 2 Ram, 3 VirtualMemory, 4 FixedDisk ...


def test_storage_percent_bytes_and_zero_size() -> None:
    cols = {HR + (2,): {(1,): HR_TYPE + "4", (2,): HR_TYPE + "4"},
            HR + (3,): {(1,): "/", (2,): "/empty"}, HR + (4,): {(1,): 4096, (2,): 1024},
            HR + (5,): {(1,): 1000, (2,): 0}, HR + (6,): {(1,): 250, (2,): 0}}
    out = profile_samples(P["host-resources"], {(1, 3, 6, 1, 2, 1, 25, 1, 6, 0): 88}, cols)
    assert _by(out, "storage.used_percent") == {(("index", "1"), ("storage", "/")): 25.0}
    assert _by(out, "storage.used_bytes")[(("index", "1"), ("storage", "/"))] == 250 * 4096
    assert _by(out, "host.processes") == {(): 88.0}


def test_storage_leaves_out_memory_rows() -> None:
    """hrStorageTable lists RAM, virtual memory and caches too: those are no storage."""
    rows = {1: ("Physical memory", "2"), 3: ("Virtual memory", "3"), 6: ("Memory buffers", "1"),
            10: ("Swap space", "3"), 31: ("/", "4"), 32: ("E:\\", "5"), 33: ("D:\\", "7"),
            34: ("/mnt/nfs", "10"), 35: ("/odd", None)}
    cols: dict = {HR + (c,): {} for c in (2, 3, 4, 5, 6)}
    for i, (descr, kind) in rows.items():
        if kind is not None:
            cols[HR + (2,)][(i,)] = "." + HR_TYPE + kind if i == 34 else HR_TYPE + kind
        cols[HR + (3,)][(i,)] = descr
        cols[HR + (4,)][(i,)], cols[HR + (5,)][(i,)], cols[HR + (6,)][(i,)] = 1024, 100, 50
    out = profile_samples(P["host-resources"], {}, cols)
    for name in ("storage.used_percent", "storage.used_bytes", "storage.size_bytes"):
        assert {dict(k)["storage"] for k in _by(out, name)} == {"/", "E:\\", "/mnt/nfs"}, name


def test_octets_fall_back_to_32_bit_counters_row_by_row() -> None:
    cols = {IF + (10,): {(1,): 5, (2,): 7}, IF + (16,): {(1,): 6, (2,): 8},
            IFX + (6,): {(2,): 2**40, (3,): 9}, IFX + (10,): {(2,): 2**41, (1,): None}}
    out = profile_samples(P["if-mib"], {}, cols)
    assert _by(out, "if.in_octets_total") == {(("ifindex", "1"),): 5.0,
                                              (("ifindex", "2"),): 2.0**40,
                                              (("ifindex", "3"),): 9.0}
    assert _by(out, "if.out_octets_total") == {(("ifindex", "1"),): 6.0,
                                               (("ifindex", "2"),): 2.0**41}


def test_entity_sensor_scale_precision_and_type_filter() -> None:
    S = (1, 3, 6, 1, 2, 1, 99, 1, 1, 1)
    cols = {S + (1,): {(1,): 8, (2,): 10, (3,): 12}, S + (2,): {(1,): 9, (2,): 10, (3,): 9},
            S + (3,): {(1,): 1, (2,): 0, (3,): 0}, S + (4,): {(1,): 455, (2,): 3, (3,): 1},
            S + (5,): {(1,): 1, (2,): 1, (3,): 3},
            (1, 3, 6, 1, 2, 1, 47, 1, 1, 1, 1, 7): {(1,): "CPU", (2,): "Fan"}}
    out = profile_samples(P["entity-sensor"], {}, cols)
    assert _by(out, "temp.celsius") == {(("index", "1"), ("sensor", "CPU")): 45.5}
    assert _by(out, "fan.rpm") == {(("index", "2"), ("sensor", "Fan")): 3000.0}
    assert _by(out, "sensor.ok")[(("index", "3"),)] == 0.0


def test_missing_values_give_no_sample() -> None:
    out = profile_samples(P["ups-mib"], {(1, 3, 6, 1, 2, 1, 33, 1, 2, 4, 0): None}, {})
    assert out == []


@given(st.one_of(st.none(), st.integers(), st.floats(allow_nan=True), st.text(max_size=20)))
def test_number_never_raises_and_is_finite(value: object) -> None:
    n = number(value)  # type: ignore[arg-type]
    assert n is None or math.isfinite(n)


@given(st.integers(min_value=-(2**64), max_value=2**64))
def test_mapped_enums_only_take_mapped_or_default_values(raw: int) -> None:
    m = Metric(oid=(1,), name="a.b", map={1: 1.0}, default=0.0)
    assert transform(m, raw) == (1.0 if raw == 1 else 0.0)

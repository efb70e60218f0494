"""Argument validation: a table of hostile inputs, and properties over generated ones."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from fieldwatch.agent.diag import args as a
from hypothesis import given, settings
from hypothesis import strategies as st

from fieldwatch.errors import DiagnosticRefused

HOSTILE = ["8.8.8.8; rm -rf /", "-f", "$(id)", "`id`", "a b", "host\n", "--help", "a|b",
           "a&&b", "x>y", "../../etc/shadow", "", "a..b", "-1.2.3.4", "ex ample.com",
           "exa$mple.com", "a" * 300, "bad-.example", "\0"]


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_hosts_are_refused(value: str) -> None:
    with pytest.raises(DiagnosticRefused) as exc:
        a.host("host", value)
    assert exc.value.reason == "invalid_arguments"


@pytest.mark.parametrize("value", ["8.8.8.8", "::1", "2001:db8::1", "gw", "pump-01.plant.local",
                                   "a1.b2", "fqdn.example."])
def test_hosts_that_are_fine(value: str) -> None:
    assert a.host("host", value)


SAFE = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_:")


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_an_accepted_host_is_one_plain_word_not_an_option(value: str) -> None:
    try:
        out = a.host("host", value)
    except DiagnosticRefused:
        return
    assert out and not out.startswith("-") and set(out) <= SAFE


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=12), st.integers(), st.booleans(), st.floats()))
def test_ports_are_ints_in_range_or_refused(value: object) -> None:
    try:
        out = a.port("port", value)
    except DiagnosticRefused:
        return
    assert type(out) is int and 1 <= out <= 65535


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "root"
    (r / "logs" / "old").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    (r / "link-out").symlink_to(tmp_path / "outside")
    (r / "logs" / "link-in").symlink_to(r / "logs" / "old")
    return r


@pytest.mark.parametrize("value", ["../../etc/shadow", "logs/../../outside", "/etc/shadow",
                                   "link-out", "link-out/x", "-rf", "", "logs/\0"])
def test_paths_outside_the_roots_are_refused(root: Path, value: str) -> None:
    with pytest.raises(DiagnosticRefused):
        a.inside(lambda: [root])("path", value)


def test_paths_inside_resolve(root: Path) -> None:
    check = a.inside(lambda: [root])
    assert check("path", "logs") == Path(os.path.realpath(root / "logs"))
    assert check("path", str(root / "logs" / "old")) == Path(os.path.realpath(root / "logs/old"))
    assert check("path", "logs/link-in") == Path(os.path.realpath(root / "logs" / "old"))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["..", ".", "a", "b", "/", "etc", "shadow", "-x"]),
                max_size=6))
def test_no_generated_path_leaves_the_root(tmp_path_factory: pytest.TempPathFactory,
                                           parts: list[str]) -> None:
    root = tmp_path_factory.getbasetemp() / "hyp-root"
    (root / "a" / "b").mkdir(parents=True, exist_ok=True)
    try:
        out = a.inside(lambda: [root])("path", "/".join(parts))
    except DiagnosticRefused:
        return
    assert out == Path(os.path.realpath(root)) or out.is_relative_to(os.path.realpath(root))


@pytest.mark.parametrize("value", ["1.3.6.1", ".1.3.6.1.2.1.1.5.0", "0", "2.5"])
def test_oids(value: str) -> None:
    assert a.oid("oid", value).startswith(".")


@pytest.mark.parametrize("value", ["1.3.6.1; id", "-On", "SNMPv2-MIB::sysName.0", "3.1", ""])
def test_bad_oids(value: str) -> None:
    with pytest.raises(DiagnosticRefused):
        a.oid("oid", value)


def test_unknown_and_missing_arguments() -> None:
    params = (a.Param("host", a.host, "", required=True), a.Param("n", a.integer(1, 5), "",
                                                                   default=2))
    assert a.validate(params, {"host": "gw"}) == {"host": "gw", "n": 2}
    assert a.validate(params, {}, {"host": "gw2", "n": "4"}) == {"host": "gw2", "n": 4}
    with pytest.raises(DiagnosticRefused, match="unknown"):
        a.validate(params, {"host": "gw", "cmd": "id"})
    with pytest.raises(DiagnosticRefused, match="required"):
        a.validate(params, {})


@pytest.mark.parametrize("value", ["/dev/sda; id", "/dev/../etc/shadow", "/etc/shadow", "-d",
                                   "/dev/sda1x", "sda", "/dev/sdzzzz", "/dev/sda\n"])
def test_bad_disks_are_refused(value: str) -> None:
    with pytest.raises(DiagnosticRefused):
        a.disk(lambda: [])("device", value)


def test_disks_configured_or_existing() -> None:
    assert a.disk(lambda: ["/dev/sdb"])("device", "/dev/sdb") == "/dev/sdb"
    with pytest.raises(DiagnosticRefused, match="configured"):
        a.disk(lambda: ["/dev/sdb"])("device", "/dev/vda")
    with pytest.raises(DiagnosticRefused, match="does not exist"):
        a.disk(lambda: [])("device", "/dev/sdzz")
    present = next((d for d in ("/dev/vda", "/dev/sda", "/dev/nvme0n1") if os.path.exists(d)),
                   None)
    if present:
        assert a.disk(lambda: [])("device", present) == present


def test_alert_labels_name_the_instance_to_look_at() -> None:
    from fieldwatch.collector.diag.dispatch import args_from_labels

    assert args_from_labels("smart_status", {"disk": "/dev/sda", "x": "y"}) == {
        "device": "/dev/sda"}
    assert args_from_labels("service_status", {"service": "nginx"}) == {"service": "nginx"}
    assert args_from_labels("ping", {"disk": "/dev/sda"}) == {}
    assert args_from_labels("smart_status", {}) == {}

"""Alertmanager webhook payloads (version 4) → the right tickets: firing, resolved, duplicate
delivery (HA pairs, retries), grouped alerts; bad payloads refused with a reason."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fieldwatch.collector import alertmanager as am
from fieldwatch.collector.api import HttpServer
from fieldwatch.collector.desks.config import AlertmanagerConfig, IntegrationsConfig, Secret
from fieldwatch.collector.desks.routes import routes
from fieldwatch.collector.stats import Stats
from fieldwatch.collector.store.store import Store
from hypothesis import given
from hypothesis import strategies as st
from starlette.applications import Starlette

from fieldwatch.clock import FakeClock
from fieldwatch.errors import WireFormatError

CFG = AlertmanagerConfig()


def alert(fp: str, status: str = "firing", starts: str = "2026-11-27T05:00:00.123456789Z",
          **labels: str) -> dict[str, Any]:
    return {"status": status,
            "labels": {"alertname": "DiskFull", "instance": f"host-{fp}:9100",
                       "severity": "critical", **labels},
            "annotations": {"summary": f"Disk full on host-{fp}", "description": "97% used",
                            "value": "97.2"},
            "startsAt": starts,
            "endsAt": "2026-11-27T05:10:00Z" if status == "resolved" else "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus:9090/graph?g0.expr=x", "fingerprint": fp}


def payload(*alerts: dict[str, Any]) -> bytes:
    status = "firing" if any(a["status"] == "firing" for a in alerts) else "resolved"
    return json.dumps({
        "version": "4", "groupKey": '{}:{alertname="DiskFull"}', "truncatedAlerts": 0,
        "status": status, "receiver": "fieldwatch", "groupLabels": {"alertname": "DiskFull"},
        "commonLabels": {"alertname": "DiskFull"}, "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093", "alerts": list(alerts)}).encode()


def deliver(store: Store, body: bytes, now: float = 1_900_000_000.0) -> am.Applied:
    return am.apply(store, am.parse(body), CFG, now)


def test_parse_maps_an_alert_to_a_ticket_change() -> None:
    [a] = am.parse(payload(alert("1a2b3c4d5e6f7a8b", team="storage", site="dc1")))
    ch = am.change(a, CFG)
    assert (ch.kind, ch.fingerprint, ch.rule, ch.device, ch.site, ch.severity, ch.team) == (
        "fire", "am:1a2b3c4d5e6f7a8b", "DiskFull", "host-1a2b3c4d5e6f7a8b:9100", "dc1", "P1",
        "storage")
    assert ch.title == "Disk full on host-1a2b3c4d5e6f7a8b" and ch.value == 97.2
    assert ch.first_ts == pytest.approx(1_795_755_600.123456)
    assert "prometheus:9090" in ch.description


def test_missing_fingerprint_is_derived_from_the_labels() -> None:
    a = alert("x")
    del a["fingerprint"]
    [one] = am.parse(payload(a))
    [two] = am.parse(payload(a))
    assert one.fingerprint == two.fingerprint and len(one.fingerprint) == 16


@pytest.mark.parametrize(("body", "reason"), [
    (b"not json", "bad_json"), (b"[]", "bad_field"),
    (json.dumps({"version": "3", "alerts": []}).encode(), "bad_version"),
    (json.dumps({"version": "4", "alerts": [{"status": "odd"}]}).encode(), "bad_field"),
    (payload({**alert("1"), "labels": {"x": "y"}}), "bad_field"),
    (payload({**alert("1"), "startsAt": "yesterday"}), "bad_time"),
    (payload({**alert("1"), "labels": {"alertname": 3}}), "bad_field"),
])
def test_bad_payloads_are_refused_with_a_reason(body: bytes, reason: str) -> None:
    with pytest.raises(WireFormatError) as info:
        am.parse(body)
    assert info.value.reason == reason


@given(st.binary(max_size=300))
def test_parse_never_fails_other_than_wireformaterror(data: bytes) -> None:
    with contextlib.suppress(WireFormatError):
        am.parse(data)


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=5),
                    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c,
                                                                          max_size=4),
                    max_leaves=12))
def test_parse_of_any_json_alert_is_an_alert_or_a_reason(value: Any) -> None:
    with contextlib.suppress(WireFormatError):
        am.parse(json.dumps({"version": "4", "alerts": [value]}).encode())


def test_firing_duplicate_grouped_and_resolved(store: Store) -> None:
    assert deliver(store, payload(alert("aa"))) == am.Applied(1, 0)
    assert deliver(store, payload(alert("aa"))) == am.Applied(0, 1)  # HA peer / retry
    [t] = store.list_tickets()
    assert (t["fingerprint"], t["state"], t["occurrences"]) == ("am:aa", "open", 1)
    # a group of three, one of them already known
    assert deliver(store, payload(alert("aa"), alert("bb"), alert("cc"))) == am.Applied(2, 1)
    assert sorted(t["fingerprint"] for t in store.list_tickets()) == ["am:aa", "am:bb", "am:cc"]
    # resolved: that ticket only; the duplicate resolved changes nothing
    assert deliver(store, payload(alert("bb", "resolved"))) == am.Applied(1, 0)
    assert deliver(store, payload(alert("bb", "resolved"))) == am.Applied(0, 1)
    states = {t["fingerprint"]: t["state"] for t in store.list_tickets()}
    assert states == {"am:aa": "open", "am:bb": "resolved", "am:cc": "open"}
    # a late duplicate of the old firing (same startsAt) does not bring the alert back …
    assert deliver(store, payload(alert("bb"))) == am.Applied(0, 1)
    assert {t["fingerprint"]: t["state"] for t in store.list_tickets()}["am:bb"] == "resolved"
    # … a new firing (new startsAt) does
    deliver(store, payload(alert("bb", starts="2026-11-27T06:00:00Z")))
    assert [t["state"] for t in store.list_tickets() if t["fingerprint"] == "am:bb"][0] != \
        "resolved"


def test_seen_keys_are_forgotten_after_keep_seen(store: Store) -> None:
    deliver(store, payload(alert("dd")), now=1000.0)
    cfg = AlertmanagerConfig(keep_seen=10.0)
    am.apply(store, am.parse(payload(alert("ee"))), cfg, 2000.0)
    assert am.apply(store, am.parse(payload(alert("dd"))), cfg, 2001.0).accepted == 1


@pytest.fixture
def api(store: Store, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Stats]]:
    monkeypatch.setenv("FW_AM_TOKEN", "am-secret")
    cfg = IntegrationsConfig(alertmanager=AlertmanagerConfig(token=Secret(env="FW_AM_TOKEN")))
    stats = Stats()
    server = HttpServer(Starlette(routes=routes(store, cfg, FakeClock(), stats)), port=0)
    server.start()
    base = f"http://127.0.0.1:{server.port}"
    from tests.desks.server import wait_for
    wait_for(lambda: _up(base))
    yield base, stats
    server.stop()


def _up(base: str) -> bool:
    try:
        httpx.get(base + "/api/v1/outbox", timeout=1)
        return True
    except httpx.HTTPError:
        return False


def test_http_endpoint_needs_the_token_and_explains_refusals(
        api: tuple[str, Stats], store: Store) -> None:
    base, stats = api
    url = base + am.PATH
    assert httpx.post(url, content=payload(alert("ff"))).status_code == 401
    auth = {"Authorization": "Bearer am-secret"}
    bad = httpx.post(url, content=b'{"version": "4"}', headers=auth)
    assert bad.status_code == 400 and "alerts" in bad.json()["detail"]
    ok = httpx.post(url, content=payload(alert("ff"), alert("gg")), headers=auth)
    assert ok.status_code == 200 and ok.json() == {"accepted": 2, "duplicates": 0}
    assert len(store.list_tickets()) == 2
    assert stats.get("alertmanager_rejected_total", "auth") == 1
    assert stats.get("alertmanager_rejected_total", "bad_field") == 1

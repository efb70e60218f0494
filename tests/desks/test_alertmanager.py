"""Alertmanager webhook payloads (version 4) → the right tickets: firing, resolved, duplicate
delivery (HA pairs, retries), re-fire after resolve, grouped alerts; bad payloads refused with
a reason; the intake's own token."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fieldwatch.collector.desks import alertmanager as am
from fieldwatch.collector.desks.config import AlertmanagerConfig, IntegrationsConfig, Secret
from fieldwatch.collector.desks.routes import routes
from fieldwatch.collector.store.store import Store
from fieldwatch.collector.telemetry.stats import Stats
from fieldwatch.collector.web.api.app import HttpServer
from hypothesis import given, settings
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


def states(store: Store) -> dict[str, str]:
    return {t["fingerprint"]: t["state"] for t in store.list_tickets()}


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
    assert states(store) == {"am:aa": "open", "am:bb": "resolved", "am:cc": "open"}
    # a firing with a new startsAt while the ticket is open is the same fault: a duplicate
    assert deliver(store, payload(alert("aa", starts="2026-11-27T06:00:00Z"))) == am.Applied(0, 1)


def test_refire_with_the_same_starts_at_after_resolve_reopens(store: Store) -> None:
    """Issue 12.2: Alertmanager resolved the alert itself (endsAt passed), then it fires again
    with the same startsAt: (X, S, firing) → (X, S, resolved) → (X, S, firing) reopens."""
    now = 1_795_760_000.0  # after the alert's endsAt (05:10Z)
    assert deliver(store, payload(alert("ab")), now) == am.Applied(1, 0)
    assert deliver(store, payload(alert("ab", "resolved")), now + 60) == am.Applied(1, 0)
    assert states(store) == {"am:ab": "resolved"}
    assert deliver(store, payload(alert("ab")), now + 120) == am.Applied(1, 0)
    [t] = store.list_tickets()
    assert (t["state"], t["reopen_count"]) == ("reopened", 1)
    kinds = [e["kind"] for e in store.timeline(t["id"])]
    assert kinds[-1] == "reopened"
    # dated when it came back, never before it was resolved (SLA pauses stay positive)
    reopened = store.timeline(t["id"])[-1]
    assert reopened["at"] >= t["opened_at"] and reopened["at"] == now + 120
    # … and round again: each resolve and re-fire applies once, repeats are duplicates
    assert deliver(store, payload(alert("ab")), now + 130) == am.Applied(0, 1)
    assert deliver(store, payload(alert("ab", "resolved")), now + 140) == am.Applied(1, 0)
    assert deliver(store, payload(alert("ab", "resolved")), now + 150) == am.Applied(0, 1)
    assert deliver(store, payload(alert("ab")), now + 160) == am.Applied(1, 0)
    assert states(store) == {"am:ab": "reopened"}
    assert store.list_tickets()[0]["reopen_count"] == 2


def test_a_resolved_for_no_open_ticket_is_a_duplicate(store: Store) -> None:
    assert deliver(store, payload(alert("ac", "resolved"))) == am.Applied(0, 1)
    assert store.list_tickets() == []


def test_a_wont_fix_ticket_hears_of_each_firing_once(store: Store) -> None:
    from fieldwatch.collector.tickets.service_desk import ServiceDesk

    deliver(store, payload(alert("ad")))
    [t] = store.list_tickets()
    ServiceDesk(store, FakeClock()).act(t["id"], "close", "ana", reason="wont_fix")
    assert deliver(store, payload(alert("ad"))) == am.Applied(0, 1)  # seen: already known
    new = payload(alert("ad", starts="2026-11-28T05:00:00Z"))
    assert deliver(store, new) == am.Applied(1, 0)  # came back: recorded on the ticket
    assert deliver(store, new) == am.Applied(0, 1)
    kinds = [e["kind"] for e in store.timeline(t["id"])]
    assert kinds.count("recurred") == 1 and states(store) == {"am:ad": "closed"}


def test_the_delivery_log_is_pruned_after_keep_seen(store: Store) -> None:
    from fieldwatch.collector.store.schema import alertmanager_seen

    deliver(store, payload(alert("dd")), now=1000.0)
    am.apply(store, am.parse(payload(alert("ee"))), AlertmanagerConfig(keep_seen=10.0), 2000.0)
    with store.engine.connect() as conn:
        left = [r.fingerprint for r in conn.execute(alertmanager_seen.select())]
    assert left == ["ee"]


@given(st.lists(st.tuples(st.sampled_from(["f1", "f2"]), st.sampled_from(["firing", "resolved"]),
                          st.sampled_from(["2026-11-27T05:00:00Z", "2026-11-27T06:00:00Z"])),
                max_size=8))
@settings(max_examples=25, deadline=None)
def test_any_sequence_leaves_tickets_saying_the_last_status(
        seq: list[tuple[str, str, str]]) -> None:
    """Whatever Alertmanager sends in whatever order, each fingerprint's ticket ends open iff
    the last status sent was firing, and never two open at once."""
    from fieldwatch.collector.store.db import open_engine

    store = Store(open_engine("sqlite://"))
    last: dict[str, str] = {}
    for i, (fp, status, starts) in enumerate(seq):
        deliver(store, payload(alert(fp, status, starts)), 1_795_760_000.0 + i)
        last[fp] = status
    open_ = [t["fingerprint"] for t in store.list_tickets("open")]
    assert sorted(open_) == sorted(f"am:{fp}" for fp, s in last.items() if s == "firing")
    store.engine.dispose()


JSON = {"Content-Type": "application/json"}


@pytest.fixture
def api(store: Store, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Stats]]:
    monkeypatch.setenv("FW_AM_TOKEN", "am-secret")
    cfg = IntegrationsConfig(alertmanager=AlertmanagerConfig(token=Secret(env="FW_AM_TOKEN")))
    stats = Stats()
    server = HttpServer(Starlette(routes=routes(store, cfg, FakeClock(), stats,
                                                tokens=lambda: {"api-token"})), port=0)
    server.start()
    base = f"http://127.0.0.1:{server.port}"
    from tests.desks.server import answers, wait_for
    wait_for(lambda: answers(base + "/api/v1/outbox"))
    yield base, stats
    server.stop()




def test_http_endpoint_needs_its_token_and_explains_refusals(
        api: tuple[str, Stats], store: Store) -> None:
    base, stats = api
    url = base + am.PATH
    assert httpx.post(url, content=payload(alert("ff")), headers=JSON).status_code == 401
    api_token = {"Authorization": "Bearer api-token", **JSON}  # the API's token is not it
    assert httpx.post(url, content=payload(alert("ff")), headers=api_token).status_code == 401
    auth = {"Authorization": "Bearer am-secret"}
    plain = httpx.post(url, content=payload(alert("ff")),
                       headers={**auth, "Content-Type": "text/plain"})
    assert plain.status_code == 415 and "application/json" in plain.json()["detail"]
    bad = httpx.post(url, content=b'{"version": "4"}', headers={**auth, **JSON})
    assert bad.status_code == 400 and "alerts" in bad.json()["detail"]
    ok = httpx.post(url, content=payload(alert("ff"), alert("gg")), headers={**auth, **JSON})
    assert ok.status_code == 200 and ok.json() == {"accepted": 2, "duplicates": 0}
    assert len(store.list_tickets()) == 2
    assert stats.get("alertmanager_rejected_total", "auth") == 2
    assert stats.get("alertmanager_rejected_total", "media_type") == 1
    assert stats.get("alertmanager_rejected_total", "bad_field") == 1


def post_in_process(app: Starlette, path: str, body: bytes,
                    headers: dict[str, str]) -> httpx.Response:
    async def go() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://fw") as client:
            return await client.post(path, content=body, headers=headers)

    return asyncio.run(go())


def test_the_intake_refuses_everyone_until_a_token_is_configured(store: Store) -> None:
    cfg = IntegrationsConfig()  # auth: token (the default), no token given
    app = Starlette(routes=routes(store, cfg, FakeClock(), Stats(), tokens=lambda: {"t"}))
    r = post_in_process(app, am.PATH, payload(alert("hh")), JSON)
    assert r.status_code == 401 and "integrations.alertmanager.token" in r.json()["detail"]
    assert store.list_tickets() == []


def test_auth_none_takes_alerts_without_a_token_and_says_so(
        store: Store, caplog: pytest.LogCaptureFixture) -> None:
    cfg = IntegrationsConfig(alertmanager=AlertmanagerConfig(auth="none"))
    app = Starlette(routes=routes(store, cfg, FakeClock(), Stats(), tokens=lambda: {"t"}))
    assert "takes alerts from anyone" in caplog.text
    assert post_in_process(app, am.PATH, payload(alert("ii")), JSON).status_code == 200
    assert len(store.list_tickets()) == 1


def test_auth_none_with_a_token_is_a_config_error() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="auth: none takes no token"):
        AlertmanagerConfig(auth="none", token=Secret(env="X"))

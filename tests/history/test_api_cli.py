"""The history's HTTP routes (behind the API token) and `fieldwatch metrics`, on real stores;
the `history:` config section validated with locations."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest
from fieldwatch.collector.config import CollectorConfig
from fieldwatch.collector.history.query import EmbeddedHistory
from fieldwatch.collector.store.db import open_engine
from fieldwatch.collector.store.store import Store
from fieldwatch.collector.telemetry.stats import Stats
from fieldwatch.collector.web.accounts.store import AccountStore
from fieldwatch.collector.web.api.app import HttpServer, make_app

from fieldwatch.cli import main
from fieldwatch.clock import FakeClock
from fieldwatch.config import load_config
from fieldwatch.errors import ConfigError
from tests.e2e.procs import wait_for
from tests.history.helpers import T0, H, feed, message, worker

AUTH = {"Authorization": "Bearer t0ken"}


def test_metrics_routes(store: Store) -> None:
    clock = FakeClock(T0)
    feed(worker(store, clock), clock, [message(d, i + 1, T0 + i * 60, {"temp{mount=/}": i})
                                       for i in range(30) for d in ("x", "y")])
    backend = EmbeddedHistory(store.engine, H, FakeClock(T0 + 1800))
    app = make_app(store, Stats(), tokens=lambda: frozenset({"t0ken"}), history=lambda: backend)
    server = HttpServer(app, port=0)
    server.start()
    base = f"http://{server.host}:{server.port}"
    try:
        wait_for(lambda: httpx.get(f"{base}/healthz").status_code == 200, 10)
        for path in ("/api/v1/metrics/query?selector=temp", "/api/v1/metrics/series"):
            for auth in ({}, {"Authorization": "Bearer wrong"}):
                assert httpx.get(base + path, headers=auth).status_code == 401
        with httpx.Client(base_url=base, timeout=10, headers=AUTH) as client:
            r = client.get("/api/v1/metrics/query", params={
                "selector": 'temp{device="x", mount="/"}', "start": T0, "end": T0 + 600})
            assert r.status_code == 200, r.text
            [s] = r.json()["series"]
            assert s == {"metric": "temp", "site": "s", "device": "x", "labels": {"mount": "/"},
                         "resolution": "raw", "min": None, "max": None,
                         "points": [[T0 + i * 60, float(i)] for i in range(11)]}
            stepped = client.get("/api/v1/metrics/query", params={
                "selector": 'temp{device="x"}', "start": T0, "end": T0 + 1740, "step": "10m"})
            [s] = stepped.json()["series"]
            assert s["resolution"] == "5m" and s["points"][0] == [T0, 4.5]
            assert s["min"][0] == 0.0 and s["max"][0] == 9.0
            listed = client.get("/api/v1/metrics/series", params={
                "selector": '{device="y"}', "start": T0, "end": T0 + 60}).json()["series"]
            assert [k["metric"] for k in listed][-1] == "temp" and len(listed) == 4
            for params, why in (({"selector": "temp{"}, "column 6"),
                                ({"selector": ""}, "metric name"),
                                ({"selector": "temp", "start": "x"}, "epoch seconds"),
                                ({"selector": "temp", "since": "soon"}, "duration"),
                                ({"selector": "temp", "step": "0s"}, "at least 1s"),
                                ({"selector": "temp", "start": T0, "end": T0}, "empty")):
                bad = client.get("/api/v1/metrics/query", params=params)
                assert bad.status_code == 400 and why in bad.json()["error"], (params, bad.text)
        span = f"selector=temp&start={T0}&end={T0 + 600}"
        for path in (f"/api/v1/metrics/query?{span}", f"/api/v1/metrics/series?{span}"):
            assert httpx.get(base + path, headers=AUTH).json()["series"], path  # shared: all
        accounts = AccountStore(store.engine)  # a user of another site sees none of site s
        accounts.add("far", "viewer", sites=["elsewhere"])
        far = {"Authorization": f"Bearer {accounts.new_token('far')}"}
        for path in (f"/api/v1/metrics/query?{span}", f"/api/v1/metrics/series?{span}"):
            r = httpx.get(base + path, headers=far)
            assert r.status_code == 200 and r.json() == {"series": []}, r.text
    finally:
        server.stop()


def test_metrics_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = f"sqlite:///{tmp_path / 'x.db'}"
    store = Store(open_engine(db))
    now = time.time()
    clock = FakeClock(now - 600)
    feed(worker(store, clock), clock, [message("x", i + 1, now - 600 + i * 60, {"temp": i})
                                       for i in range(10)])
    store.engine.dispose()
    assert main(["metrics", "series", "--db", db, "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [k["metric"] for k in listed] == ["agent.duplicates_total",
                                             "agent.samples_backfilled_total",
                                             "agent.samples_missing", "temp"]
    assert main(["metrics", "series", "--db", db, "--metric", "temp", "--since", "1h"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == ["SITE", "DEVICE", "METRIC", "LABELS"]
    assert out.splitlines()[1].split() == ["s", "x", "temp"]
    assert main(["metrics", "query", 'temp{device="x"}', "--since", "1h", "--db", db,
                 "--json"]) == 0
    [s] = json.loads(capsys.readouterr().out)
    assert s["resolution"] == "raw" and [v for _, v in s["points"]] == list(range(10))
    assert main(["metrics", "query", "temp", "--since", "1h", "--step", "5m", "--db", db]) == 0
    text = capsys.readouterr().out
    assert text.startswith("s/x temp{}: ") and "(5m)" in text and "min 0  max" in text
    assert main(["metrics", "query", "temp{", "--db", db]) == 1
    assert "column 6" in capsys.readouterr().err
    assert main(["metrics", "query", "temp", "--since", "soon", "--db", db]) == 1
    assert main(["rules", "backtest", str(tmp_path), "--db", db, "--source", "messages",
                 "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["source"] == "messages" and report["messages"] == 10


@pytest.mark.parametrize(("yaml", "problem"), [
    ("history:\n  raw_for: 1h\n", ":2:12: history.raw_for: at least 2h"),
    ("history:\n  raw_for: 10d\n  rollup_5m_for: 3d\n",
     ":3:18: history.rollup_5m_for: must be at least raw_for"),
    ("history:\n  rollup_1h_for: 30d\n", ":2:18: history.rollup_1h_for: must be at least"),
    ("history:\n  retention_every: 0s\n", "history.retention_every: between 1s and 1d"),
    ("history:\n  keep: 1d\n", ":2:3: history.keep: unknown key"),
])
def test_history_config_problems_are_located(tmp_path: Path, yaml: str, problem: str) -> None:
    f = tmp_path / "collector.yaml"
    f.write_text(yaml)
    with pytest.raises(ConfigError, match=problem):
        load_config(CollectorConfig, f)


def test_history_config_defaults() -> None:
    h = CollectorConfig().history
    assert (h.enabled, h.raw_for, h.rollup_5m_for, h.rollup_1h_for) == (
        True, 2 * 86400, 90 * 86400, 730 * 86400)

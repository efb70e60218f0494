"""The remote HistoryBackend against real servers: series, raw points, steps, matchers, errors."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fieldwatch.collector.history import Query, SeriesKey
from fieldwatch.collector.history.promwire import compress, encode_write_request
from fieldwatch.collector.history.remote_config import RemoteQueryConfig
from fieldwatch.collector.history.remote_query import RemoteHistory, RemoteHistoryError
from fieldwatch.collector.history.remote_write import Encoder, send, series_labels
from fieldwatch.collector.rules.selectors import Selector, parse_matcher

from fieldwatch import wire
from fieldwatch.broker import free_port
from tests.conftest import _require
from tests.remote.data import ODD, cycle, now_aligned
from tests.remote.servers import Prometheus, VictoriaMetrics

START = now_aligned()
DEVICES = [("hq", "web-01"), ("hq", "lab-02"), ("plant", "pump-01")]


def _load(server: VictoriaMetrics | Prometheus) -> list[wire.Metrics]:
    msgs = [cycle(site, device, seq, START + 10 * seq) for seq in range(1, 31)
            for site, device in DEVICES]
    with httpx.Client(timeout=10) as client:
        send(client, server.write_url, Encoder().batch(msgs).body())
    if isinstance(server, VictoriaMetrics):
        server.flush()
    return msgs


@pytest.fixture
def loaded(tsdb: VictoriaMetrics | Prometheus) -> Iterator[tuple[RemoteHistory, list]]:
    msgs = _load(tsdb)
    history = RemoteHistory(RemoteQueryConfig.model_validate({"url": tsdb.base}),
                            device_types=lambda: {("hq", "web-01"): "server",
                                                  ("hq", "lab-02"): "server",
                                                  ("plant", "pump-01"): "pump"})
    yield history, msgs
    history.close()


def _key(site: str, device: str, mount: str) -> SeriesKey:
    return SeriesKey(site, device, "disk.used_percent", (("mount", mount),))


def test_series_and_matchers(loaded: tuple[RemoteHistory, list]) -> None:
    history, _ = loaded
    q = Query("disk.used_percent", Selector(), START, START + 400)
    assert len(history.series(q)) == 6
    q = Query("disk.used_percent", Selector(labels={"mount": parse_matcher("=~/v.*")},
                                            device=parse_matcher("!~lab-.*")), START, START + 400)
    assert history.series(q) == [_key("hq", "web-01", "/var"), _key("plant", "pump-01", "/var")]
    q = Query("disk.used_percent", Selector(labels={"mount": parse_matcher("/")},
                                            type=parse_matcher("pump")), START, START + 400)
    assert history.series(q) == [_key("plant", "pump-01", "/")]
    odd = Query("temp.celsius", Selector(labels={"path": parse_matcher(ODD["path"])},
                                         site=parse_matcher("plant")), START, START + 400)
    assert [k.device for k in history.series(odd)] == ["pump-01"]


def test_raw_points_are_the_samples_sent(loaded: tuple[RemoteHistory, list]) -> None:
    history, msgs = loaded
    q = Query("disk.used_percent", Selector(labels={"mount": parse_matcher("/")},
                                            device=parse_matcher("web-01")),
              START + 50, START + 100)  # both ends hold a sample: both are in
    (s,) = history.query(q)
    sent = [(m.ts, m.samples[0].value) for m in msgs
            if m.device == "web-01" and START + 50 <= m.ts <= START + 100]
    assert s.key == _key("hq", "web-01", "/") and s.points == sent and len(sent) == 6
    assert s.resolution == "remote"


def test_a_step_gives_the_bucket_average(loaded: tuple[RemoteHistory, list]) -> None:
    history, _ = loaded
    q = Query("agent.buffer_queued", Selector(device=parse_matcher("web-01")),
              START + 60, START + 300, step=60)
    (s,) = history.query(q)
    # seq % 3 at 10 s intervals: every 60 s window (t-60, t] holds two of each of 0, 1, 2
    assert [t for t, _ in s.points] == [START + 60 * i for i in range(1, 6)]
    assert all(v == pytest.approx(1.0, abs=0.35) for _, v in s.points)


def test_no_step_on_a_long_range_picks_one(loaded: tuple[RemoteHistory, list]) -> None:
    history, _ = loaded
    history.cfg = history.cfg.model_copy(update={"raw_within": 60.0, "max_points": 10})
    q = Query("agent.buffer_queued", Selector(device=parse_matcher("web-01")),
              START, START + 300)
    (s,) = history.query(q)
    assert 1 <= len(s.points) <= 11 and s.points[1][0] - s.points[0][0] == 30.0


def test_a_type_matcher_without_device_types_is_refused(victoria: VictoriaMetrics) -> None:
    history = RemoteHistory(RemoteQueryConfig.model_validate({"url": victoria.base}))
    try:
        with pytest.raises(RemoteHistoryError, match="device types") as exc:
            history.series(Query("up", Selector(type=parse_matcher("pump")), 0, 1))
        assert exc.value.kind == "refused"
    finally:
        history.close()


def test_a_query_the_server_cannot_run_is_refused(victoria: VictoriaMetrics) -> None:
    history = RemoteHistory(RemoteQueryConfig.model_validate({"url": victoria.base}))
    try:
        bad = Query("up", Selector(labels={"x": parse_matcher("=~(?=a)b")}), START, START + 60)
        with pytest.raises(RemoteHistoryError) as exc:  # lookahead: Python has it, RE2 not
            history.query(bad)
        assert exc.value.kind == "refused"
    finally:
        history.close()


def test_an_unreachable_server_is_unavailable(tmp_path: Path) -> None:
    history = RemoteHistory(RemoteQueryConfig.model_validate(
        {"url": f"http://127.0.0.1:{free_port()}", "timeout": 2}))
    try:
        with pytest.raises(RemoteHistoryError) as exc:
            history.query(Query("up", Selector(), 0, 60))
        assert exc.value.kind == "unavailable"
    finally:
        history.close()


def test_a_sample_stored_twice_comes_back_once(tmp_path: Path) -> None:
    _require("victoria-metrics")
    server = VictoriaMetrics(tmp_path / "vm", dedup=False)  # keeps both copies
    server.start()
    labels = series_labels("s", "d", "up", {})
    body = compress(encode_write_request([(labels, [(int(START * 1000), 1.0)])]))
    history = RemoteHistory(RemoteQueryConfig.model_validate({"url": server.base}))
    try:
        with httpx.Client(timeout=10) as client:
            send(client, server.write_url, body)
            send(client, server.write_url, body)
        server.flush()
        assert len(server.query("up[1m]", START + 10)[0]["values"]) == 2
        (s,) = history.query(Query("up", Selector(), START - 10, START + 10))
        assert s.points == [(START, 1.0)]
    finally:
        history.close()
        server.stop()

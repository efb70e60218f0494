"""The exporter's decisions, against a real local HTTP receiver that answers as told: retry on
5xx/429/connection errors without moving the cursor, split and set aside on 4xx, skip what
does not decode, wait for ids to settle, start where configured."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import sqlalchemy as sa
from fieldwatch.collector.config import CollectorConfig
from fieldwatch.collector.history import promwire
from fieldwatch.collector.history.exporter import CURSOR_EVERY, Exporter, decode_stored
from fieldwatch.collector.history.remote_config import RemoteWriteConfig
from fieldwatch.collector.store.db import open_engine
from fieldwatch.collector.store.schema import messages, remote_write_cursors
from fieldwatch.collector.store.store import BatchWrite, RawMessage, Store
from fieldwatch.collector.telemetry.stats import Stats
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from fieldwatch import wire
from fieldwatch.clock import FakeClock
from fieldwatch.errors import ConfigError, WireFormatError
from tests.remote.data import now_aligned, store_cycles


class Receiver:
    """Decodes every request; answers `statuses` in turn (then 204), or 400 for a request
    holding a series of device `refuse`."""

    def __init__(self) -> None:
        self.statuses: list[int] = []
        self.refuse: str | None = None
        self.accepted: list[list[tuple[promwire.Labels, list[tuple[int, float]]]]] = []
        self.headers: list[dict[str, str]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.headers.append(dict(self.headers))
                series = promwire.decode_write_request(promwire.decompress(body))
                status = outer.statuses.pop(0) if outer.statuses else 204
                if status == 204 and outer.refuse and any(
                        ("device", outer.refuse) in labels for labels, _ in series):
                    status = 400
                if status == 204:
                    outer.accepted.append(series)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/api/v1/write"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def devices(self) -> list[str]:
        return [dict(labels)["device"] for req in self.accepted for labels, _ in req
                if dict(labels)["__name__"] == "agent_buffer_queued"]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(open_engine(f"sqlite:///{tmp_path / 'fw.db'}"))
    yield s
    s.engine.dispose()


@pytest.fixture
def made() -> Iterator[list[Exporter]]:
    out: list[Exporter] = []
    yield out
    for e in out:
        e.stop()


def make(made: list[Exporter], store: Store, url: str, stats: Stats | None = None,
         monotonic: object = None, **cfg: object) -> Exporter:
    config = RemoteWriteConfig.model_validate({"name": "t", "url": url, "settle": 0, **cfg})
    kw = {"monotonic": monotonic} if monotonic else {}
    made.append(Exporter(config, store.engine, FakeClock(), stats or Stats(), **kw))  # type: ignore[arg-type]
    return made[-1]


@pytest.mark.parametrize("status", [500, 503, 429])
def test_server_trouble_is_retried_and_the_cursor_stays(
        status: int, store: Store, receiver: Receiver, made: list[Exporter]) -> None:
    store_cycles(store, [("s", "a")], range(1, 4), now_aligned())
    exp = make(made, store, receiver.url)
    receiver.statuses = [status, status]
    for _ in range(2):
        r = exp.run_once()
        assert r.retry == f"HTTP {status}" and exp.cursor == 0
    assert exp.run_once().sent_messages == 3 and exp.cursor == 3
    assert exp.stats.get("remote_write_retries_total", "t") == 2
    assert receiver.headers[-1]["Content-Encoding"] == "snappy"
    assert receiver.headers[-1]["X-Prometheus-Remote-Write-Version"] == "0.1.0"


def test_a_refused_message_is_split_out_and_set_aside(
        store: Store, receiver: Receiver, made: list[Exporter]) -> None:
    start = now_aligned()
    store_cycles(store, [("s", "a"), ("s", "bad"), ("s", "c")], range(1, 4), start)
    receiver.refuse = "bad"
    stats = Stats()
    exp = make(made, store, receiver.url, stats)
    r = exp.run_once()
    assert (r.sent_messages, r.rejected_messages, r.rejected_samples) == (6, 3, 18)
    assert exp.cursor == 9 and stats.get("remote_write_rejected_samples_total", "t") == 18
    assert sorted(receiver.devices()) == ["a"] * 3 + ["c"] * 3
    assert exp.run_once().idle


def test_requests_hold_whole_messages_up_to_max_samples(
        store: Store, receiver: Receiver, made: list[Exporter]) -> None:
    store_cycles(store, [("s", "a")], range(1, 11), now_aligned())
    exp = make(made, store, receiver.url, max_samples=13)  # six samples a message: two fit
    sizes = []
    while not (r := exp.run_once()).idle:
        sizes.append(r.sent_messages)
    assert sizes == [2, 2, 2, 2, 2] and len(receiver.accepted) == 5


def test_an_undecodable_row_is_skipped_and_counted(
        store: Store, receiver: Receiver, made: list[Exporter]) -> None:
    start = now_aligned()
    store_cycles(store, [("s", "a")], range(1, 2), start)
    store.write(BatchWrite(raw=[RawMessage("s", "a", "metrics", 2, start, start, b"{oops")]),
                start)
    store_cycles(store, [("s", "a")], range(3, 4), start)
    stats = Stats()
    exp = make(made, store, receiver.url, stats)
    r = exp.run_once()
    assert (r.sent_messages, r.skipped, exp.cursor) == (2, 1, 3)
    assert stats.get("remote_write_skipped_total", "t") == 1


def test_only_settled_ids_are_read(store: Store, receiver: Receiver,
                                   made: list[Exporter]) -> None:
    t = [100.0]
    store_cycles(store, [("s", "a")], range(1, 3), now_aligned())
    exp = make(made, store, receiver.url, monotonic=lambda: t[0], settle=2.0)
    assert exp.run_once().idle  # ids first seen now: not yet
    t[0] += 1.0
    store_cycles(store, [("s", "a")], range(3, 4), now_aligned())
    assert exp.run_once().idle
    t[0] += 1.5
    r = exp.run_once()  # the two seen 2.5 s ago go; the third is 1.5 s old
    assert r.sent_messages == 2 and exp.cursor == 2
    t[0] += 1.0
    assert exp.run_once().sent_messages == 1 and exp.cursor == 3


def test_start_now_skips_what_is_already_stored_and_the_cursor_persists(
        store: Store, receiver: Receiver, made: list[Exporter]) -> None:
    store_cycles(store, [("s", "a")], range(1, 4), now_aligned())
    exp = make(made, store, receiver.url, start="now")
    assert exp.cursor == 3 and exp.run_once().idle
    store_cycles(store, [("s", "a")], range(4, 5), now_aligned())
    assert exp.run_once().sent_messages == 1
    again = make(made, store, receiver.url, start="oldest")  # the row exists: start unused
    assert again.cursor == 4


def test_events_are_not_sent(store: Store, receiver: Receiver, made: list[Exporter]) -> None:
    start = now_aligned()
    store.write(BatchWrite(raw=[RawMessage("s", "a", "event", 1, start, start, b"{}")]), start)
    exp = make(made, store, receiver.url)
    assert exp.run_once().idle and receiver.accepted == []


def test_the_thread_keeps_retrying_until_the_server_takes_it(
        store: Store, receiver: Receiver, made: list[Exporter]) -> None:
    store_cycles(store, [("s", "a")], range(1, 3), now_aligned())
    receiver.statuses = [500, 500, 500]
    exp = make(made, store, receiver.url, first_delay=0.01, max_delay=0.05, poll=0.01)
    exp.start()
    deadline = threading.Event()
    for _ in range(500):
        if exp.cursor == 2:
            break
        deadline.wait(0.02)
    exp.stop()
    assert exp.cursor == 2 and len(receiver.accepted) == 1
    with store.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(messages)).scalar() == 2


def test_a_failing_database_round_is_counted_not_fatal(
        store: Store, receiver: Receiver, made: list[Exporter]) -> None:
    exp = make(made, store, receiver.url, first_delay=0.01, max_delay=0.02)
    with store.engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE messages RENAME TO messages_away")
    exp.start()
    for _ in range(500):
        if exp.stats.get("remote_write_errors_total", "t") >= 2:
            break
        threading.Event().wait(0.01)
    with store.engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE messages_away RENAME TO messages")
    store_cycles(store, [("s", "a")], range(1, 2), now_aligned())
    for _ in range(500):
        if exp.cursor == 1:
            break
        threading.Event().wait(0.01)
    exp.stop()
    assert exp.stats.get("remote_write_errors_total", "t") >= 2 and exp.cursor == 1


def test_config_section_validates() -> None:
    cfg = CollectorConfig.model_validate({
        "remote_write": [{"name": "vm", "url": "http://127.0.0.1:8428/api/v1/write"}],
        "remote_query": {"url": "http://127.0.0.1:8428"}})
    assert cfg.remote_write[0].max_samples == 10_000 and cfg.remote_query is not None
    for bad in ([{"name": "x", "url": "http://h/w"}, {"name": "x", "url": "http://h/v"}],
                [{"name": "bad name", "url": "http://h/w"}],
                [{"name": "x", "url": "http://h/w", "username": "u"}],
                [{"name": "x", "url": "http://h/w", "bearer_token": {"env": "T"},
                  "username": "u", "password": {"env": "P"}}]):
        with pytest.raises(ValidationError):
            CollectorConfig.model_validate({"remote_write": bad})


def test_credentials_become_headers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FW_TOKEN", "s3cret")
    (tmp_path / "pw").write_text("hunter2\n")
    bearer = RemoteWriteConfig.model_validate({"name": "a", "url": "http://h/w",
                                               "bearer_token": {"env": "FW_TOKEN"}})
    assert bearer.headers() == {"Authorization": "Bearer s3cret"}
    basic = RemoteWriteConfig.model_validate({"name": "a", "url": "http://h/w", "username": "u",
                                              "password": {"file": str(tmp_path / "pw")}})
    assert basic.headers() == {"Authorization": "Basic dTpodW50ZXIy"}
    assert "s3cret" not in repr(bearer)
    missing = RemoteWriteConfig.model_validate({"name": "a", "url": "http://h/w",
                                                "bearer_token": {"env": "FW_NOT_SET"}})
    with pytest.raises(ConfigError, match="FW_NOT_SET is not set"):
        missing.headers()


def test_lag_is_exported_and_a_warning_comes_before_retention_bites(
        store: Store, receiver: Receiver, made: list[Exporter],
        caplog: pytest.LogCaptureFixture) -> None:
    start = now_aligned()
    store_cycles(store, [("s", "a")], range(1, 3), start)  # received at start + 10, + 20
    config = RemoteWriteConfig.model_validate({"name": "t", "url": receiver.url, "settle": 0})
    clock = FakeClock(start + 10 + 300)
    stats = Stats()
    made.append(exp := Exporter(config, store.engine, clock, stats, keep_raw_for=500.0))
    with caplog.at_level("WARNING"):
        exp.run_once()
    assert exp.lag_seconds == 300.0
    assert stats.gauges()["remote_write_lag_seconds{t}"] == 300.0
    assert stats.gauges()["remote_write_cursor{t}"] == 2.0
    assert "300s behind" in caplog.text and "keep_raw_for" in caplog.text
    assert exp.run_once().idle and stats.gauges()["remote_write_lag_seconds{t}"] == 0.0


def _committed(store: Store) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(sa.select(remote_write_cursors.c.last_id)).scalar_one())


def test_while_draining_the_cursor_is_committed_once_a_second_and_a_crash_loses_nothing(
        store: Store, receiver: Receiver, made: list[Exporter]) -> None:
    t = [100.0]
    store_cycles(store, [("s", "a")], range(1, 11), now_aligned())
    exp = make(made, store, receiver.url, monotonic=lambda: t[0], max_messages=2)
    for _ in range(3):  # full reads: a backlog, the commit waits for CURSOR_EVERY
        assert exp.run_once().sent_messages == 2
    assert exp.cursor == 6 and _committed(store) == 0
    t[0] += CURSOR_EVERY
    assert exp.run_once().sent_messages == 2 and _committed(store) == 8
    # a crash now: the next process starts at the committed cursor and sends 9, 10 ...
    again = make(made, store, receiver.url, max_messages=2)
    assert again.cursor == 8
    assert again.run_once().sent_messages == 2 and again.run_once().idle
    assert _committed(store) == 10  # caught up: committed at once
    # every message reached the server (one agent_buffer_queued point per message)
    assert len({ts for req in receiver.accepted for labels, pts in req
                if dict(labels)["__name__"] == "agent_buffer_queued" for ts, _ in pts}) == 10


def test_stop_commits_the_cursor(store: Store, receiver: Receiver,
                                 made: list[Exporter]) -> None:
    store_cycles(store, [("s", "a")], range(1, 6), now_aligned())
    exp = make(made, store, receiver.url, monotonic=lambda: 0.0, max_messages=2)
    exp.run_once()
    assert _committed(store) == 0
    exp.stop()
    assert _committed(store) == 2


@pytest.mark.parametrize(("db", "settle"), [("sqlite", 0.0), ("postgresql", 1.0)])
def test_settle_defaults_to_zero_only_on_sqlite(db: str, settle: float, tmp_path: Path,
                                                request: pytest.FixtureRequest) -> None:
    url = f"sqlite:///{tmp_path / 'fw.db'}" if db == "sqlite" else \
        request.getfixturevalue("pg_url")
    engine = open_engine(url)
    try:
        cfg = RemoteWriteConfig.model_validate({"name": f"settle-{db}", "url": "http://x/w"})
        exp = Exporter(cfg, engine, FakeClock(), Stats())
        assert exp.settle == settle
        exp.stop()
    finally:
        engine.dispose()


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200) | st.builds(
    lambda m, cut: wire.encode(m)[:cut], st.builds(
        wire.Metrics, device=st.text(max_size=5), site=st.text(max_size=5),
        seq=st.integers(0, 10), ts=st.floats(0, 2e9),
        samples=st.lists(st.builds(wire.Sample, st.text(max_size=5),
                                   st.floats(allow_nan=False)), max_size=3)),
    st.integers(1, 400)))
def test_stored_rows_decode_as_the_wire_module_decodes_them(payload: bytes) -> None:
    try:
        want = wire.decode(payload, max_bytes=len(payload) + 1)
    except WireFormatError:
        want = None
    try:
        got = decode_stored(payload)
    except WireFormatError:
        got = None
    assert got == (want if isinstance(want, wire.Metrics) else None)


def test_the_thread_reading_ahead_sends_everything_once_and_in_order(
        store: Store, receiver: Receiver, made: list[Exporter]) -> None:
    store_cycles(store, [("s", "a")], range(1, 31), now_aligned())
    receiver.statuses = [204, 204, 500, 204, 429]  # read-aheads thrown away and read again
    exp = make(made, store, receiver.url, max_messages=3, first_delay=0.01, max_delay=0.02,
               poll=0.01)
    exp.start()
    for _ in range(500):
        if exp.cursor == 30:
            break
        threading.Event().wait(0.02)
    exp.stop()
    stamps = [ts for req in receiver.accepted for labels, pts in req
              if dict(labels)["__name__"] == "agent_buffer_queued" for ts, _ in pts]
    assert len(stamps) == 30 and stamps == sorted(stamps)  # once each, in id order
    assert _committed(store) == 30

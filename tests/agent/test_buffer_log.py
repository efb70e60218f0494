"""The outage buffer's log: record format, torn and corrupt records, segments, and that the
state rebuilt from disk is always the state in memory."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

import pytest
from fieldwatch.agent import buffer_journal
from fieldwatch.agent.buffer import Outbox
from fieldwatch.agent.buffer_index import State
from fieldwatch.agent.buffer_log import (
    HEADER,
    MAGIC,
    Ack,
    Checkpoint,
    Drop,
    Message,
    Record,
    RecordError,
    Reported,
    decode,
    frame,
    scan,
    unframe,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fieldwatch.clock import FakeClock


def disk_bytes(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.iterdir())


def segments(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.log"))


def payloads(b: Outbox) -> list[bytes]:
    return [e.payload for e in b.peek(0, 100_000)]


def assert_replays(b: Outbox) -> None:
    """What a restart would read from disk is exactly what the buffer holds in memory."""
    mem, disk = b._st, State.load(b.path)
    try:
        assert (disk.count, disk.bytes, disk.last_id) == (mem.count, mem.bytes, mem.last_id)
        assert disk.seqs == mem.seqs and disk.drops == mem.drops
        assert disk.checkpoint().live == mem.checkpoint().live
    finally:
        disk.close()


# -- format ---------------------------------------------------------------------------------

records = st.one_of(
    st.builds(Message, id=st.integers(1, 2**62), site=st.text(max_size=20),
              device=st.text(max_size=20), topic=st.text(max_size=40), retain=st.booleans(),
              created=st.floats(allow_nan=False), seq=st.integers(0, 2**62),
              payload=st.binary(max_size=300)),
    st.builds(Ack, runs=st.lists(st.tuples(st.integers(1, 2**40), st.integers(1, 2**40)))),
    st.builds(Drop, reason=st.sampled_from(["size", "age"]),
              runs=st.lists(st.tuples(st.integers(1, 99), st.integers(1, 99))),
              counts=st.lists(st.tuples(st.text(max_size=5), st.text(max_size=5),
                                        st.integers(1, 99)))),
    st.builds(Reported, site=st.text(max_size=5), device=st.text(max_size=5),
              reason=st.just("size"), count=st.integers(0, 99)),
    st.builds(Checkpoint, last_id=st.integers(0, 2**40), seqs=st.just([("s", "d", 3)]),
              drops=st.just([]), live=st.just([(1, 2)])),
)


@given(st.binary(max_size=2000))
def test_arbitrary_bytes_are_refused_or_skipped_never_anything_else(data: bytes) -> None:
    for attempt in (decode, unframe):
        with contextlib.suppress(RecordError):
            attempt(data)
    framed = HEADER.pack(MAGIC, len(data), zlib.crc32(data)) + data  # passes the CRC
    for blob in (data, framed, framed + data):
        for off, length, rec in scan(io.BytesIO(blob), len(blob)):
            assert off + length <= len(blob) and isinstance(rec, Record)


@given(st.lists(records, max_size=8), st.binary(max_size=200))
def test_intact_records_read_back_and_anything_after_them_is_cut(recs: list[Record],
                                                                 tail: bytes) -> None:
    frames = [frame(r) for r in recs]
    data = b"".join(frames)
    got = [rec for _, _, rec in scan(io.BytesIO(data + tail), len(data + tail))]
    assert got[:len(recs)] == recs
    for f in frames:
        assert unframe(f) in recs


@given(st.lists(records, min_size=1, max_size=4), st.data())
def test_a_torn_or_flipped_last_frame_is_not_there(recs: list[Record], data: st.DataObject) -> None:
    frames = [frame(r) for r in recs]
    last = bytearray(frames[-1])
    if data.draw(st.booleans()):
        last = last[:data.draw(st.integers(0, len(last) - 1))]
    else:
        last[data.draw(st.integers(0, len(last) - 1))] ^= 1 << data.draw(st.integers(0, 7))
    blob = b"".join(frames[:-1]) + bytes(last)
    got = [rec for _, _, rec in scan(io.BytesIO(blob), len(blob))]
    assert got == recs[:-1]


# -- restarts -------------------------------------------------------------------------------

def test_a_torn_last_record_is_ignored_and_appends_go_on(tmp_path: Path,
                                                          clock: FakeClock) -> None:
    b = Outbox(tmp_path / "q", clock)
    for _ in range(3):
        b.add_numbered("s", "d", "t", lambda n: b"m%d" % n)
    b.close()
    (newest,) = segments(tmp_path / "q")
    torn = frame(Message(4, "s", "d", "t", False, 0.0, 4, b"m4"))[:-3]
    with newest.open("ab") as f:  # kill -9 in the middle of the 4th write
        f.write(torn)
    b = Outbox(tmp_path / "q", clock)
    try:
        assert payloads(b) == [b"m1", b"m2", b"m3"]
        assert b.add_numbered("s", "d", "t", lambda n: b"m%d" % n) == 4
        assert_replays(b)
    finally:
        b.close()
    b = Outbox(tmp_path / "q", clock)
    try:
        assert payloads(b) == [b"m1", b"m2", b"m3", b"m4"]
    finally:
        b.close()


def test_garbage_after_the_last_record_is_cut_off(tmp_path: Path, clock: FakeClock) -> None:
    b = Outbox(tmp_path / "q", clock)
    b.add("s", "d", "t", b"one")
    b.close()
    (newest,) = segments(tmp_path / "q")
    size = newest.stat().st_size
    with newest.open("ab") as f:
        f.write(os.urandom(100))
    b = Outbox(tmp_path / "q", clock)
    try:
        assert newest.stat().st_size == size
        b.add("s", "d", "t", b"two")
        assert payloads(b) == [b"one", b"two"]
    finally:
        b.close()


def test_acknowledged_messages_are_not_replayed_after_a_restart(tmp_path: Path,
                                                               clock: FakeClock) -> None:
    b = Outbox(tmp_path / "q", clock, max_bytes=64 * 1024)  # 8 KiB segments
    for _ in range(40):
        b.add_numbered("s", "d", "t", lambda n: b"%04d" % n + b"x" * 500)
    assert len(segments(tmp_path / "q")) > 2
    ids = [e.id for e in b.peek(0, 100)]
    b.delete(ids[5:30:2] + ids[:3])  # any order, across segments
    want = payloads(b)
    b.close()
    b = Outbox(tmp_path / "q", clock, max_bytes=64 * 1024)
    try:
        assert payloads(b) == want and b.count == 40 - 16
        assert b.add_numbered("s", "d", "t", lambda n: b"%04d" % n) == 41
        assert b.peek(0, 100)[-1].id > ids[-1]
    finally:
        b.close()


def test_segments_are_deleted_once_everything_in_them_is_acknowledged(
        tmp_path: Path, clock: FakeClock) -> None:
    d = tmp_path / "q"
    b = Outbox(d, clock, max_bytes=64 * 1024)
    try:
        for _ in range(60):
            b.add("s", "d", "t", b"x" * 700)
        assert len(segments(d)) >= 5
        entries = b.peek(0, 100)
        b.delete([e.id for e in entries[:30]])
        assert 2 <= len(segments(d)) < 5  # fully acknowledged ones are gone
        b.delete([e.id for e in entries[30:]])
        assert len(segments(d)) == 1 and disk_bytes(d) < 9000  # the active one
        assert (b.count, b.bytes) == (0, 0)
        assert_replays(b)
        b.add("s", "d", "t", b"new")
        assert b.peek(0, 10)[0].id == entries[-1].id + 1  # ids never reused
    finally:
        b.close()


def test_messages_in_mqtts_hands_survive_a_size_drop_and_a_restart(
        tmp_path: Path, clock: FakeClock) -> None:
    d = tmp_path / "q"
    b = Outbox(d, clock, max_bytes=64 * 1024)
    try:
        for _ in range(4):
            b.add_numbered("s", "d", "t", lambda n: b"%06d" % n + b"x" * 1500)
        b.protect_upto = b.peek(0, 2)[-1].id  # the first two were handed to MQTT
        for _ in range(60):
            b.add_numbered("s", "d", "t", lambda n: b"%06d" % n + b"x" * 1500)
            assert disk_bytes(d) <= 64 * 1024
        kept = [int(p[:6]) for p in payloads(b)]
        assert kept[:2] == [1, 2] and kept[2:] == list(range(kept[2], 65)) and kept[2] > 5
        # their segment was rewritten with them alone
        assert segments(d)[0].stat().st_size < 2 * 1600
        assert_replays(b)
    finally:
        b.close()
    b = Outbox(d, clock, max_bytes=64 * 1024)
    try:
        assert [int(p[:6]) for p in payloads(b)] == kept
    finally:
        b.close()


def test_drop_counters_and_reports_survive_restarts(tmp_path: Path, clock: FakeClock) -> None:
    d = tmp_path / "q"
    b = Outbox(d, clock, max_bytes=64 * 1024, max_age=60)
    b.add("s", "old", "t", b"x")
    clock.advance(120)
    for _ in range(60):
        b.add("s", "d", "t", b"z" * 3000)
    total = b.drops_total()
    assert total["age"] == 1 and total["size"] > 0
    b.delete([e.id for e in b.peek(0, 1000)])  # room for the reports
    b.close()
    b = Outbox(d, clock, max_bytes=64 * 1024, max_age=60)
    assert b.drops_total() == total
    reported = b.report_drops(lambda r: ("r", b"%d" % r.count))
    assert {(r.device, r.reason) for r in reported} == {("old", "age"), ("d", "size")}
    b.close()
    b = Outbox(d, clock, max_bytes=64 * 1024, max_age=60)
    try:
        assert b.report_drops(lambda r: ("r", b"")) == []
        assert b.drops_total() == total
    finally:
        b.close()


def test_a_second_buffer_on_the_same_directory_is_refused(tmp_path: Path,
                                                          clock: FakeClock) -> None:
    b = Outbox(tmp_path / "q", clock)
    try:
        with pytest.raises(RuntimeError, match="in use"):
            Outbox(tmp_path / "q", clock)
    finally:
        b.close()


# -- the bound at every write, and memory == disk ----------------------------------------

def test_the_bound_holds_at_every_moment_a_write_is_made_durable(
        tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every write is followed by an fsync, and the files are at their largest right then."""
    d, bound = tmp_path / "q", 64 * 1024
    seen: list[int] = []
    fsync = os.fsync

    def checked(fd: int) -> None:
        fsync(fd)
        seen.append(sum(p.stat().st_size for p in d.iterdir() if p.exists()))

    monkeypatch.setattr(buffer_journal.os, "fsync", checked)
    b = Outbox(d, clock, max_bytes=bound)
    try:
        for n in range(300):
            b.add_numbered("s", f"d{n % 3}", "t", lambda k: b"y" * (500 + 37 * k % 4000))
            if n % 7 == 0:
                b.protect_upto = b.peek(0, 3)[-1].id
            if n % 11 == 0:
                b.delete([e.id for e in b.peek(0, 2)])
    finally:
        b.close()
    assert len(seen) > 300 and max(seen) <= bound


ops = st.lists(st.tuples(st.sampled_from(["add", "add", "ack", "protect", "wait", "report",
                                          "reopen"]), st.integers(0, 9), st.integers(0, 5000)),
               max_size=60)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops)
def test_what_a_restart_reads_is_always_what_was_in_memory(
        steps: list[tuple[str, int, int]]) -> None:
    clock = FakeClock()
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp) / "q"

        def open_box() -> Outbox:
            return Outbox(d, clock, max_bytes=64 * 1024, max_age=1000)

        def queued() -> list[tuple[int, bytes]]:
            return [(e.id, e.payload) for e in b.peek(0, 10_000)]

        b = open_box()
        try:
            for op, x, n in steps:
                if op == "add":
                    b.add_numbered("s", f"d{x % 3}", "t", lambda k, n=n: b"p" * n)
                elif op == "ack":
                    b.delete([e.id for e in b.peek(0, 10)][x::n % 3 + 1])
                elif op == "protect":
                    head = b.peek(0, x // 2 + 1)
                    b.protect_upto = head[-1].id if head else 0
                elif op == "wait":
                    clock.advance(n / 10)
                elif op == "report":
                    b.report_drops(lambda r: ("r", b"%d" % r.count))
                else:
                    before = queued(), b.drops_total()
                    b.close()
                    b = open_box()
                    assert (queued(), b.drops_total()) == before
                assert disk_bytes(d) <= 64 * 1024
                assert b.bytes == sum(len(p) for _, p in queued())
                assert_replays(b)
        finally:
            b.close()


def test_the_agent_does_not_load_sqlite3(tmp_path: Path) -> None:
    code = ("import sys\nfrom pathlib import Path\n"
            "import fieldwatch.agent.daemon\n"
            "from fieldwatch.agent.buffer import Outbox\n"
            "from fieldwatch.clock import SystemClock\n"
            f"b = Outbox(Path({str(tmp_path / 'q')!r}), SystemClock())\n"
            "b.add('s', 'd', 't', b'x'); b.delete([e.id for e in b.peek(0, 1)]); b.close()\n"
            "print(sorted(m for m in sys.modules if 'sqlite' in m))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60)
    assert out.stdout.strip() == "[]"


def test_an_old_sqlite_buffer_is_left_alone_and_said_so(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from fieldwatch.agent.config import AgentConfig
    from fieldwatch.agent.daemon import Agent
    from fieldwatch.agent.diag.config import DiagConfig

    old = tmp_path / "buffer.sqlite"
    old.write_bytes(b"SQLite format 3\x00")
    agent = Agent(AgentConfig(state_dir=tmp_path, diag=DiagConfig(enabled=False)))
    try:
        assert agent.outbox.path == tmp_path / "buffer"
    finally:
        agent.outbox.close()
    assert old.read_bytes() == b"SQLite format 3\x00"
    assert [r.message for r in caplog.records if "no longer used" in r.message] == [
        f"{old} is no longer used (the buffer is now {tmp_path / 'buffer'}); remove it by hand"]

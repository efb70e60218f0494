"""The outage buffer on its own: order, numbering, bounds, drop reports, durability."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from fieldwatch.agent.buffer import Drops, Outbox

from fieldwatch.clock import FakeClock


def disk_bytes(directory: Path) -> int:
    """What the buffer holds on disk: the sizes of the files in its directory."""
    return sum(p.stat().st_size for p in directory.iterdir())


@pytest.fixture
def box(tmp_path: Path, clock: FakeClock):  # type: ignore[no-untyped-def]
    b = Outbox(tmp_path / "buffer", clock, max_bytes=1 << 20, max_age=3600)
    yield b
    b.close()


def test_fifo_and_numbering_per_device(box: Outbox) -> None:
    assert box.add_numbered("s", "a", "t/a", lambda n: b"a%d" % n) == 1
    assert box.add_numbered("s", "b", "t/b", lambda n: b"b%d" % n) == 1
    assert box.add_numbered("s", "a", "t/a", lambda n: b"a%d" % n) == 2
    box.add("s", "a", "t/a/inventory", b"inv", retain=True)
    entries = box.peek(0, 10)
    assert [e.payload for e in entries] == [b"a1", b"b1", b"a2", b"inv"]
    assert entries[-1].retain and not entries[0].retain
    assert [e.payload for e in box.peek(entries[1].id, 1)] == [b"a2"]
    assert (box.count, box.bytes) == (4, 9)
    box.delete([entries[0].id, entries[2].id])
    assert [e.payload for e in box.peek(0, 10)] == [b"b1", b"inv"]
    assert (box.count, box.bytes) == (2, 5)


def test_everything_survives_reopening(tmp_path: Path, clock: FakeClock) -> None:
    b = Outbox(tmp_path / "q", clock)
    for _ in range(3):
        b.add_numbered("s", "d", "t", lambda n: b"%d" % n)
    b.delete([b.peek(0, 1)[0].id])
    b.close()
    b = Outbox(tmp_path / "q", clock)
    try:
        assert [e.payload for e in b.peek(0, 10)] == [b"2", b"3"]
        assert (b.count, b.bytes) == (2, 2)
        assert b.add_numbered("s", "d", "t", lambda n: b"%d" % n) == 4  # numbers never reused
    finally:
        b.close()


def test_a_killed_writer_loses_no_committed_message(tmp_path: Path) -> None:
    """kill -9 right after the writes: every committed message is there on reopening."""
    script = f"""
import os, signal
from pathlib import Path
from fieldwatch.agent.buffer import Outbox
from fieldwatch.clock import SystemClock
b = Outbox(Path({str(tmp_path / 'k')!r}), SystemClock())
for i in range(200):
    b.add_numbered("s", "d", "t", lambda n: b"m%d" % n)
os.kill(os.getpid(), signal.SIGKILL)
"""
    proc = subprocess.run([sys.executable, "-c", script], timeout=60, check=False)
    assert proc.returncode == -9
    b = Outbox(tmp_path / "k", FakeClock())
    try:
        assert [e.payload for e in b.peek(0, 500)] == [b"m%d" % n for n in range(1, 201)]
    finally:
        b.close()


def test_size_bound_drops_oldest_counts_and_keeps_the_files_within_it(
        tmp_path: Path, clock: FakeClock) -> None:
    bound = 64 * 1024
    b = Outbox(tmp_path / "small", clock, max_bytes=bound)
    try:
        sizes = []
        for _ in range(100):
            b.add_numbered("s", "d", "t", lambda n: b"%06d" % n + b"x" * 3000)
            sizes.append(disk_bytes(tmp_path / "small"))
        assert max(sizes) <= bound
        kept = [int(e.payload[:6]) for e in b.peek(0, 1000)]
        assert kept == list(range(kept[0], 101))  # the newest, contiguous
        assert 3 <= len(kept) <= bound // 3000  # at most what fits
        assert b.drops_total() == {"size": 100 - len(kept)}
    finally:
        b.close()


def test_messages_in_flight_are_not_dropped(tmp_path: Path, clock: FakeClock) -> None:
    b = Outbox(tmp_path / "small", clock, max_bytes=64 * 1024)
    try:
        b.add_numbered("s", "d", "t", lambda n: b"%06d" % n + b"x" * 3000)
        b.protect_upto = b.peek(0, 1)[0].id  # handed to MQTT: will be delivered anyway
        for _ in range(50):
            b.add_numbered("s", "d", "t", lambda n: b"%06d" % n + b"x" * 3000)
        assert int(b.peek(0, 1)[0].payload[:6]) == 1
    finally:
        b.close()


def test_messages_the_broker_refused_are_no_longer_protected_from_the_bounds(
        tmp_path: Path, clock: FakeClock) -> None:
    b = Outbox(tmp_path / "small", clock, max_bytes=64 * 1024, max_age=3600)
    try:
        for i in range(3):  # handed to MQTT; the broker refused the first and the third
            b.add("s", f"d{i}", "t", b"%d" % i + b"x" * 3000)
        b.protect_upto = 3
        b.released = frozenset({1, 3})
        clock.advance(3601)  # all three are too old now
        b.add("s", "d", "t", b"new")
        assert [e.id for e in b.peek(0, 10)] == [2, 4]  # the one in flight is kept
        assert b.drops_total() == {"age": 2}
        b.released = frozenset({2})
        for _ in range(40):  # the size bound drops a released message too
            b.add("s", "d", "t", b"y" * 3000)
        assert 2 not in [e.id for e in b.peek(0, 100)]
    finally:
        b.close()


def test_a_message_bigger_than_the_bound_is_dropped_and_counted_and_its_number_spent(
        tmp_path: Path, clock: FakeClock) -> None:
    b = Outbox(tmp_path / "small", clock, max_bytes=64 * 1024)
    try:
        assert b.add_numbered("s", "d", "t", lambda n: b"small") == 1
        b.add_numbered("s", "d", "t", lambda n: b"y" * 200_000)
        assert b.add_numbered("s", "d", "t", lambda n: b"after") == 3
        assert [e.payload for e in b.peek(0, 10)] == [b"after"]
        assert b.drops_total() == {"size": 2}
    finally:
        b.close()


def test_age_bound_drops_old_messages(box: Outbox, clock: FakeClock) -> None:
    box.add("s", "d", "t", b"old")
    clock.advance(1800)
    box.add("s", "d", "t", b"mid")
    clock.advance(2000)  # "old" is now 3800 s old, "mid" 2000 s
    box.add("s", "d", "t", b"new")
    assert [e.payload for e in box.peek(0, 10)] == [b"mid", b"new"]
    assert box.drops_total() == {"age": 1}


def test_drops_are_reported_once_per_device_and_reason(tmp_path: Path,
                                                        clock: FakeClock) -> None:
    b = Outbox(tmp_path / "r", clock, max_bytes=64 * 1024, max_age=60)
    try:
        for dev in ("a", "b"):
            b.add("s", dev, "t", b"x")
        clock.advance(120)
        for _ in range(40):
            b.add("s", "a", "t", b"z" * 3000)
        reports: list[Drops] = []

        def report(d: Drops) -> tuple[str, bytes]:
            reports.append(d)
            return f"r/{d.device}", f"{d.reason}:{d.count}".encode()

        b.report_drops(report)
        got = {(d.device, d.reason): d.count for d in reports}
        assert got[("a", "age")] == 1 and got[("b", "age")] == 1
        assert got[("a", "size")] == b.drops_total()["size"] > 0
        queued = [e.payload for e in b.peek(0, 100) if e.topic.startswith("r/")]
        assert sorted(queued) == sorted(f"{d.reason}:{d.count}".encode() for d in reports)
        reports.clear()
        b.report_drops(report)
        assert reports == []  # reported once
    finally:
        b.close()

"""The agent's outage buffer, the SQLite one it replaced against the segmented log, same run,
same directory: throughput of add + peek + delete, and the bytes on disk at the peak.

Two workloads of `--messages` messages of `--size` bytes, numbered per device like the agent's
metrics (`add_numbered`), each on a fresh buffer with the agent's default bounds:

- outage: every message added while the link is down, then the backlog drained the way the
  MQTT sender does it (`peek` up to `--inflight` after the last id handed over, `delete` them).
- steady: the link is up; each add is followed by its peek and delete.

Every add is durable when it returns in both (SQLite: a committed transaction with a rollback
journal, synchronous=NORMAL; the log: write + fsync), so the figures depend on the disk:
`filesystem` in the JSON says which one `--dir` is on.

    python bench/outage_buffer.py [--messages 10000] [--size 900] [--inflight 100]
                                  [--old-rev 8ca57f9] [--dir DIR] [--repeat 1]

The old implementation is `agent/buffer.py` at `--old-rev` (git show), loaded as a module.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

from fieldwatch.agent import buffer as new_buffer

from fieldwatch.clock import SystemClock

ROOT = Path(__file__).resolve().parent.parent


def old_module(rev: str, scratch: Path) -> ModuleType:
    src = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:agent/buffer.py"],
                         capture_output=True, text=True, check=True).stdout
    path = scratch / "old_buffer.py"
    path.write_text(src)
    spec = importlib.util.spec_from_file_location("old_buffer", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["old_buffer"] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


def disk_bytes(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.iterdir() if p.is_file())


def outage(box: Any, path: Path, n: int, payload: bytes, inflight: int) -> dict[str, float]:
    t0 = time.perf_counter()
    for _ in range(n):
        box.add_numbered("plant", "pump-01", "fieldwatch/v1/plant/pump-01/metrics",
                         lambda seq: payload)
    t1 = time.perf_counter()
    peak = disk_bytes(path)
    after, sent = 0, 0
    for _ in range(n + 1):  # one batch per round, at least one message per batch
        batch = box.peek(after, inflight)
        if not batch:
            break
        after = batch[-1].id
        box.protect_upto = after
        box.delete([e.id for e in batch])
        sent += len(batch)
    t2 = time.perf_counter()
    assert sent == n and box.count == 0, (sent, box.count)
    return {"add_per_s": round(n / (t1 - t0)), "drain_per_s": round(n / (t2 - t1)),
            "total_s": round(t2 - t0, 3), "peak_disk_bytes": peak}


def steady(box: Any, n: int, payload: bytes) -> dict[str, float]:
    t0 = time.perf_counter()
    after = 0
    for _ in range(n):
        box.add_numbered("plant", "pump-01", "fieldwatch/v1/plant/pump-01/metrics",
                         lambda seq: payload)
        (entry,) = box.peek(after, 1)
        after = box.protect_upto = entry.id
        box.delete([entry.id])
    t1 = time.perf_counter()
    assert box.count == 0
    return {"messages_per_s": round(n / (t1 - t0)), "total_s": round(t1 - t0, 3)}


def run(make: Any, scratch: Path, name: str, args: argparse.Namespace) -> dict[str, Any]:
    payload = b"x" * args.size
    out: dict[str, Any] = {}
    for workload in ("outage", "steady"):
        path = scratch / f"{name}-{workload}" / "buffer"
        box, path = make(path)
        try:
            if workload == "outage":
                out[workload] = outage(box, path, args.messages, payload, args.inflight)
            else:
                out[workload] = steady(box, args.messages, payload)
        finally:
            box.close()
    return out


def filesystem(path: Path) -> str:
    proc = subprocess.run(["df", "--output=fstype", str(path)], capture_output=True, text=True,
                          check=False)
    lines = proc.stdout.split()
    return lines[-1] if proc.returncode == 0 and lines else "unknown"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--messages", type=int, default=10_000)
    ap.add_argument("--size", type=int, default=900)
    ap.add_argument("--inflight", type=int, default=100)
    ap.add_argument("--old-rev", default="8ca57f9", help="git revision of the SQLite buffer")
    ap.add_argument("--dir", type=Path, default=None, help="where the buffers go (a temp dir)")
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args()
    clock = SystemClock()
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="outage-buffer-") as tmp:
        scratch = Path(tmp)
        old = old_module(args.old_rev, scratch)
        makers = {
            "sqlite": lambda p: (old.Outbox(p.with_suffix(".sqlite"), clock),
                                 p.with_suffix(".sqlite")),
            "log": lambda p: (new_buffer.Outbox(p, clock), p),
        }
        rounds = []
        for r in range(args.repeat):
            rounds.append({name: run(make, scratch / str(r), name, args)
                           for name, make in makers.items()})
        result = {
            "messages": args.messages, "payload_bytes": args.size, "inflight": args.inflight,
            "old_rev": args.old_rev, "filesystem": filesystem(scratch),
            "python": platform.python_version(), "sqlite_version": old.sqlite3.sqlite_version,
            "rounds": rounds,
        }
    json.dump(result, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()

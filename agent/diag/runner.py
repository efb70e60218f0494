"""Running one diagnostic: an argv in its own process group, or a function in a thread, with a
deadline and an output cap.

A child that outlives its timeout is killed with its whole process group (so `sh -c` and its
children go too). Output past the cap is read and thrown away, not left in the pipe: a child
blocked on a full pipe would otherwise never finish, and the true size is reported.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

SAFE_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
CHUNK = 256 * 1024


@dataclass(frozen=True)
class Outcome:
    exit_code: int | None  # None: killed on timeout, or a function that raised
    output: bytes  # at most the cap
    output_bytes: int  # everything printed, including what was cut
    timed_out: bool
    duration: float
    error: str = ""  # could not start, or the function's exception


class _Capped:
    def __init__(self, cap: int) -> None:
        self.cap, self.kept, self.total = cap, bytearray(), 0

    def add(self, data: bytes) -> None:
        self.total += len(data)
        room = self.cap - len(self.kept)
        if room > 0:
            self.kept += data[:room]


def run_argv(argv: Sequence[str], timeout: float, cap: int,
             env: dict[str, str] | None = None) -> Outcome:
    """Run `argv` (no shell), stdout and stderr merged, stdin closed, cwd `/`."""
    start = time.monotonic()
    try:
        proc = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, cwd="/", env=env or SAFE_ENV,
                                start_new_session=True, close_fds=True)
    except OSError as exc:
        return Outcome(None, b"", 0, False, time.monotonic() - start,
                       f"cannot start {argv[0]}: {exc.strerror}")
    out = _Capped(cap)
    deadline = start + timeout
    timed_out = False
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    with selectors.DefaultSelector() as sel:
        sel.register(fd, selectors.EVENT_READ)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                timed_out = True
                break
            if not sel.select(min(left, 1.0)):
                continue
            data = os.read(fd, CHUNK)
            if not data:
                break
            out.add(data)
    if not timed_out:
        try:
            proc.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            timed_out = True
    _kill_group(proc.pid)  # a timed-out tree, or children left behind by a finished parent
    proc.wait()
    proc.stdout.close()
    return Outcome(None if timed_out else proc.returncode, bytes(out.kept), out.total, timed_out,
                   time.monotonic() - start)


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def run_call(fn: Callable[[float], tuple[int, bytes]], timeout: float, cap: int) -> Outcome:
    """Run an in-process check `fn(timeout) -> (exit_code, output)` in a thread.

    The function gets its time budget and must honour it (socket timeouts, a deadline in
    walks); if it still overruns, its result is discarded and the run reported as timed out.
    """
    start = time.monotonic()
    result: list[tuple[int, bytes]] = []
    error: list[str] = []

    def target() -> None:
        try:
            result.append(fn(timeout))
        except Exception as exc:  # noqa: BLE001 - reported as the check's error, never fatal
            error.append(f"{type(exc).__name__}: {exc}")

    t = threading.Thread(target=target, name="fieldwatch-diag-call", daemon=True)
    t.start()
    t.join(timeout + 1.0)
    took = time.monotonic() - start
    if t.is_alive():
        return Outcome(None, b"", 0, True, took)
    if error:
        return Outcome(None, b"", 0, False, took, error[0])
    code, data = result[0]
    return Outcome(code, data[:cap], len(data), False, took)

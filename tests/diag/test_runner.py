"""argv runs: process-group kill on timeout, output cut at the cap while the pipe is drained."""

from __future__ import annotations

import time

import pytest
from fieldwatch.agent.diag.runner import run_argv, run_call


def _gone(pid: int) -> bool:
    """Dead: no such process, or a zombie waiting for init to reap it."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def test_exit_code_and_merged_output() -> None:
    out = run_argv(["/bin/sh", "-c", "echo out; echo err >&2; exit 3"], 10, 1024)
    assert out.exit_code == 3 and not out.timed_out
    assert sorted(out.output.split()) == [b"err", b"out"]


def test_timeout_kills_the_whole_process_group(tmp_path) -> None:
    pidfile = tmp_path / "child.pid"
    out = run_argv(["/bin/sh", "-c", f"sleep 60 & echo $! > {pidfile}; wait"], 0.5, 1024)
    assert out.timed_out and out.exit_code is None
    child = int(pidfile.read_text())
    for _ in range(100):  # the grandchild got SIGKILL too; give the kernel a moment
        if _gone(child):
            break
        time.sleep(0.02)
    assert _gone(child)


def test_100_mb_of_output_is_cut_at_the_cap_and_fully_drained() -> None:
    out = run_argv(["/usr/bin/head", "-c", "100000000", "/dev/zero"], 60, 65536)
    assert out.exit_code == 0 and not out.timed_out
    assert len(out.output) == 65536
    assert out.output_bytes == 100_000_000


def test_endless_output_stops_at_the_timeout_with_the_cap_kept() -> None:
    out = run_argv(["/usr/bin/yes"], 0.5, 4096)
    assert out.timed_out and len(out.output) == 4096 and out.output_bytes > 4096


def test_missing_binary_is_an_error_not_a_crash() -> None:
    out = run_argv(["/nonexistent/tool"], 1, 100)
    assert out.exit_code is None and "cannot start" in out.error


def test_in_process_call_errors_and_caps() -> None:
    assert run_call(lambda t: (0, b"x" * 5000), 5, 1000).output == b"x" * 1000
    out = run_call(lambda t: 1 / 0, 5, 1000)  # type: ignore[arg-type,return-value]
    assert out.exit_code is None and "ZeroDivisionError" in out.error


@pytest.mark.parametrize("cap", [1024, 10_000])
def test_cap_is_exact(cap: int) -> None:
    out = run_argv(["/usr/bin/head", "-c", "50000", "/dev/zero"], 10, cap)
    assert len(out.output) == cap and out.output_bytes == 50_000

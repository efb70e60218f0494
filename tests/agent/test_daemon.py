"""The agent process shell: its schedule, its lean entry point, and lazy heavy imports."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from fieldwatch.agent.ticker import Ticker


class Steps:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_ticker_runs_at_once_then_every_interval_and_coalesces_missed_runs() -> None:
    clock, runs = Steps(), []
    t = Ticker(monotonic=clock)
    t.every(10, lambda: runs.append(("poll", clock.t)), "poll")
    t.every(3600, lambda: runs.append(("inv", clock.t)), "inventory")
    for job in t._jobs:  # what start() does, without the thread
        job.due = clock.t
    assert t.run_due() == 10
    clock.t = 105
    assert t.run_due() == 5 and len(runs) == 2
    clock.t = 110
    t.run_due()
    clock.t = 175  # the machine slept through six intervals: one run, not six
    assert t.run_due() == 10
    assert runs == [("poll", 100), ("inv", 100), ("poll", 110), ("poll", 175)]


def test_a_failing_job_keeps_its_schedule() -> None:
    clock, calls = Steps(), []

    def boom() -> None:
        calls.append(clock.t)
        raise RuntimeError("source bug")

    t = Ticker(monotonic=clock)
    t.every(10, boom, "poll")
    t._jobs[0].due = clock.t
    t.run_due()
    clock.t = 110
    t.run_due()
    assert calls == [100, 110]


def test_ticker_thread_starts_and_stops() -> None:
    t = Ticker()
    ran = []
    t.every(60, lambda: ran.append(1), "poll")
    t.start()
    t.stop(timeout=5)
    assert ran == [1] and not t._thread.is_alive()


def test_lean_entry_point_validates_config_and_never_loads_snmp_or_the_collector(
        tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("site: hq\nbuffer: {max_bytes: 1}\n")
    done = subprocess.run([sys.executable, "-m", "fieldwatch.agent", "run", "--config",
                           str(bad)], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert f"{bad}:2:21: buffer.max_bytes" in done.stderr
    code = (
        "import sys, pathlib\n"
        "from fieldwatch.agent.config import AgentConfig\n"
        "from fieldwatch.agent.daemon import Agent\n"
        f"a = Agent(AgentConfig(state_dir=pathlib.Path({str(tmp_path / 's')!r}),"
        " diag={'enabled': False}))\n"
        "a.outbox.close()\n"
        "heavy = ('pysnmp', 'sqlalchemy', 'cryptography', 'apscheduler', 'starlette')\n"
        "print(sorted({m.split('.')[0] for m in sys.modules if m.startswith(heavy)}))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True).stdout
    assert out.strip() == "[]"

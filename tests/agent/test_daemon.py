"""The agent process shell: its schedule, its lean entry point, and lazy heavy imports."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

from fieldwatch.agent.schedule import build_scheduler


def test_schedule_runs_at_once_repeats_and_survives_a_failing_job() -> None:
    polls, fails = threading.Event(), []
    ran: list[str] = []

    def poll() -> None:
        ran.append("poll")
        if ran.count("poll") >= 3:
            polls.set()

    def boom() -> None:
        fails.append(1)
        raise RuntimeError("source bug")

    sched = build_scheduler([("poll", 0.05, poll), ("boom", 0.05, boom),
                             ("inventory", 3600, lambda: ran.append("inventory"))])
    sched.start()
    try:
        jobs = {j.id: j for j in sched.get_jobs()}
        assert set(jobs) == {"poll", "boom", "inventory"}
        assert all(j.coalesce and j.max_instances == 1 for j in jobs.values())
        assert polls.wait(5)  # first run at once, then every interval
    finally:
        sched.shutdown(wait=True)
    assert ran.count("inventory") == 1 and len(fails) >= 2  # a failure keeps its schedule


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
        "heavy = ('pysnmp', 'sqlalchemy', 'cryptography', 'starlette')\n"
        "print(sorted({m.split('.')[0] for m in sys.modules if m.startswith(heavy)}))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True).stdout
    assert out.strip() == "[]"

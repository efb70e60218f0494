"""The agent process shell: its schedule, its lean entry point, and lazy heavy imports."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest
from fieldwatch.agent.__main__ import UsageError, parse_args
from fieldwatch.agent.__main__ import main as agent_main
from fieldwatch.agent.schedule import IntervalScheduler, build_scheduler, next_due
from hypothesis import example, given
from hypothesis import strategies as st

from fieldwatch import signing


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
        assert polls.wait(5)  # first run at once, then every interval
    finally:
        sched.shutdown(wait=True)
    assert not sched.running
    assert ran.count("inventory") == 1 and len(fails) >= 2  # a failure keeps its schedule
    assert {j.id: j.failures for j in sched.jobs}["boom"] == len(fails)


class FakeMonotonic:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_a_late_run_is_coalesced_and_the_grid_kept() -> None:
    clock = FakeMonotonic()
    runs: list[float] = []

    def slow() -> None:  # this run overruns 3.5 intervals
        runs.append(clock.t)
        clock.t += 35.0

    sched = IntervalScheduler([("poll", 10.0, slow)], clock=clock)
    sched.run_due(clock.t)
    assert runs == [1000.0] and sched.jobs[0].due == 1040.0  # not 1010, 1020, 1030 in a burst
    sched.run_due(1039.0)
    assert len(runs) == 1  # nothing is due early
    sched.run_due(1040.0)
    assert len(runs) == 2 and sched.jobs[0].due == 1080.0


def test_shutdown_waits_for_the_running_job() -> None:
    started, release, finished = threading.Event(), threading.Event(), threading.Event()

    def job() -> None:
        started.set()
        release.wait(5)
        finished.set()

    sched = build_scheduler([("poll", 3600, job)])
    sched.start()
    assert started.wait(5)
    threading.Timer(0.2, release.set).start()
    sched.shutdown(wait=True)
    assert finished.is_set()


@given(due=st.floats(0, 1e6), every=st.floats(0.1, 1e5), ahead=st.floats(0, 1e7))
def test_next_due_is_the_first_slot_on_the_grid_after_now(due: float, every: float,
                                                           ahead: float) -> None:
    now = due + ahead
    nxt = next_due(due, every, now)
    assert nxt > now
    slots = (nxt - due) / every
    assert abs(slots - round(slots)) < 1e-6 * max(1.0, slots)
    assert nxt - every <= now + 1e-9 * max(1.0, now)  # one slot earlier is not after now


def test_lean_entry_point_validates_config_and_never_loads_snmp_or_the_collector(
        tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("site: hq\nbuffer: {max_bytes: 1}\n")
    done = subprocess.run([sys.executable, "-m", "fieldwatch.agent", "run", "--config",
                           str(bad)], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert f"{bad}:2:21: buffer.max_bytes" in done.stderr
    _, pub = signing.generate(tmp_path / "keys")
    cfg = tmp_path / "agent.yaml"
    cfg.write_text(f"state_dir: {tmp_path / 's'}\ndiag: {{trusted_keys: [{pub}]}}\n")
    # diagnostics on, with a trusted key: `cryptography` waits for the first request
    code = (
        "import sys\n"
        "from fieldwatch.agent.config import AgentConfig\n"
        "from fieldwatch.agent.daemon import Agent\n"
        "from fieldwatch.config import load_config\n"
        f"a = Agent(load_config(AgentConfig, {str(cfg)!r}))\n"
        "assert a.diag is not None and a.diag._handler is None\n"
        "a.outbox.close()\n"
        "heavy = ('pysnmp', 'sqlalchemy', 'cryptography', 'starlette', 'pydantic', 'apscheduler')\n"
        "print(sorted({m.split('.')[0] for m in sys.modules if m.startswith(heavy)}))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True).stdout
    assert out.strip() == "[]"


def test_a_broken_trusted_key_stops_the_agent_at_start(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pub"
    junk.write_text("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
    cfg = tmp_path / "agent.yaml"
    cfg.write_text(f"state_dir: {tmp_path / 's'}\ndiag: {{trusted_keys: [{junk}]}}\n")
    done = subprocess.run([sys.executable, "-m", "fieldwatch.agent", "run", "--config",
                           str(cfg)], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2, done.stderr
    assert f"{junk}:0:0: not an Ed25519 public key" in done.stderr


@pytest.mark.parametrize(("argv", "expected"), [
    (["run"], (Path("/etc/fieldwatch/agent.yaml"), False)),
    (["-v", "run", "--config", "a.yaml"], (Path("a.yaml"), True)),
    (["run", "--config=b.yaml", "--verbose"], (Path("b.yaml"), True)),
])
def test_agent_arguments(argv: list[str], expected: tuple[Path, bool]) -> None:
    assert parse_args(argv) == expected


@pytest.mark.parametrize(("argv", "message"), [
    ([], "the action is missing"), (["run", "--config"], "--config needs a FILE"),
    (["start"], "unexpected argument 'start'"), (["--config", "x", "run"], "'--config'"),
])
def test_bad_agent_arguments_exit_2_with_usage(argv: list[str], message: str,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    assert agent_main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: python -m fieldwatch.agent") and message in err


@given(st.lists(st.sampled_from(["run", "-v", "--config", "--config=x", "x", "--verbose", ""]),
                max_size=6))
@example(["run", "--config", "-v"])  # found by hypothesis: -v was taken as the config file
def test_any_arguments_parse_or_give_a_usage_error(argv: list[str]) -> None:
    try:
        config, verbose = parse_args(argv)
    except UsageError:
        return
    assert "run" in argv and isinstance(config, Path) and verbose == any(
        a in ("-v", "--verbose") for a in argv)

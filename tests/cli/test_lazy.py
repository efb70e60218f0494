"""`fieldwatch agent run` costs what `python -m fieldwatch.agent run` costs: the CLI imports
only the module of the command that runs (issue 12 #10)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from fieldwatch.cli import COMMANDS, build_parser, command_of

COLLECTOR_SIDE = ("fieldwatch.collector", "sqlalchemy", "fastapi", "pydantic", "starlette",
                  "uvicorn", "amqtt")

PROBE = """
import json, sys
from fieldwatch.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as exc:  # --help
    code = exc.code
print(json.dumps({"code": code, "modules": sorted(sys.modules)}), file=sys.stderr)
"""


def loaded(*argv: str, cwd: Path | None = None) -> tuple[int, set[str]]:
    """Exit code and every module imported by `fieldwatch ARGV`, in a fresh interpreter."""
    out = subprocess.run([sys.executable, "-c", PROBE, *argv], capture_output=True, text=True,
                         timeout=60, cwd=cwd)
    report = json.loads(out.stderr.strip().splitlines()[-1])
    return report["code"], set(report["modules"])


def heavy(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if m.split(".")[0] in COLLECTOR_SIDE
                  or m.startswith("fieldwatch.collector"))


def test_agent_run_help_imports_nothing_of_the_collector_side() -> None:
    code, modules = loaded("agent", "run", "--help")
    assert code == 0
    assert "fieldwatch.cli.agent" in modules
    assert heavy(modules) == []
    # nor any other command's module
    assert not {m for m in modules if m.startswith("fieldwatch.cli.")} - {
        "fieldwatch.cli.agent", "fieldwatch.cli.common"}


def test_agent_run_with_a_config_stays_on_the_agent_side(tmp_path: Path) -> None:
    """Up to the daemon's start: a broken config makes it stop there (exit 2) after loading
    the agent's config and daemon modules."""
    cfg = tmp_path / "agent.yaml"
    cfg.write_text("site: hq\nintervall: 10s\n")
    code, modules = loaded("agent", "run", "--config", str(cfg))
    assert code == 2
    assert "fieldwatch.agent.config" in modules
    assert heavy(modules) == []


def test_top_level_help_lists_every_command_without_importing_them(
        capsys: pytest.CaptureFixture[str]) -> None:
    code, modules = loaded("--help")
    assert code == 0
    assert not {m for m in modules if m.startswith("fieldwatch.cli.")} - {
        "fieldwatch.cli.common"}
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--help"])
    out = capsys.readouterr().out
    for name, (_, helptext) in COMMANDS.items():
        assert name in out and helptext in out


def test_each_help_line_is_the_one_its_module_registers() -> None:
    full = build_parser(every=True)
    registered = {a.dest: a.help for act in full._subparsers._group_actions  # type: ignore[union-attr]
                  for a in act._choices_actions}
    assert registered == {name: helptext for name, (_, helptext) in COMMANDS.items()}


@pytest.mark.parametrize(("argv", "command"), [
    (["agent", "run"], "agent"), (["-v", "tickets", "list"], "tickets"),
    (["--version"], None), ([], None), (["--", "up"], None)])
def test_command_of(argv: list[str], command: str | None) -> None:
    assert command_of(argv) == command


def test_an_unknown_command_names_the_valid_ones() -> None:
    out = subprocess.run([sys.executable, "-m", "fieldwatch.cli", "tickts"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert "invalid choice: 'tickts'" in out.stderr and "'tickets'" in out.stderr

"""Where the data is (issue 12 #12): --db, --data, --config, $FIELDWATCH_DATA, then
./fieldwatch-data only if it exists. Nothing but `fieldwatch up` creates a data directory."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from fieldwatch.cli.state import up_data_dir
from tests.cli.helpers import cli, run, seed_data_dir

Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return seed_data_dir(tmp_path / "up-data")


@pytest.fixture
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory without fieldwatch data, the current one; FIELDWATCH_DATA unset."""
    d = tmp_path / "elsewhere"
    d.mkdir()
    monkeypatch.chdir(d)
    monkeypatch.delenv("FIELDWATCH_DATA", raising=False)
    return d


@pytest.fixture
def fw(capsys: pytest.CaptureFixture[str]) -> Run:
    """`fieldwatch ARGV` in this process: (exit code, stdout, stderr)."""
    return lambda *argv: run(capsys, *argv)


@pytest.mark.parametrize("argv", [
    ["tickets", "list"], ["tickets", "show", "1"], ["devices", "list"], ["report", "kpi"],
    ["silences", "list"], ["outbox", "list"], ["diag", "show", "1"],
    ["tickets", "create", "--device", "d", "--title", "t"], ["tickets", "ack", "1"],
])
def test_from_another_directory_nothing_is_created_and_it_says_where_it_looked(
        elsewhere: Path, fw: Run, argv: list[str]) -> None:
    code, _, err = fw(*argv)
    assert code == 2, err
    assert list(elsewhere.iterdir()) == []  # no ./fieldwatch-data, no database
    [line] = err.splitlines()
    assert f"no ./fieldwatch-data in {elsewhere}" in line
    assert "FIELDWATCH_DATA is not set" in line and "--data DIR" in line


def test_the_environment_variable_finds_ups_data(data: Path, elsewhere: Path) -> None:
    """As a user runs it: a subprocess started in another directory."""
    out = cli("devices", "list", "--json", cwd=elsewhere, env={"FIELDWATCH_DATA": str(data)})
    assert out.returncode == 0, out.stderr
    assert [d["device"] for d in json.loads(out.stdout)] == ["pump-1"]
    assert list(elsewhere.iterdir()) == []


def test_an_existing_fieldwatch_data_in_the_directory_is_used(elsewhere: Path,
                                                              fw: Run) -> None:
    seed_data_dir(elsewhere / "fieldwatch-data")
    code, out, err = fw("devices", "list", "--json")
    assert code == 0, err
    assert len(json.loads(out)) == 1


def test_an_all_in_one_config_names_the_data_directory(data: Path, elsewhere: Path,
                                                        fw: Run) -> None:
    cfg = elsewhere / "fieldwatch.yaml"
    cfg.write_text(f"http_port: 8080\ndata: {data}\n")
    code, out, err = fw("devices", "list", "--json", "--config", str(cfg))
    assert code == 0, err
    assert len(json.loads(out)) == 1


def test_a_collector_config_names_the_database(data: Path, elsewhere: Path, fw: Run) -> None:
    cfg = elsewhere / "collector.yaml"
    cfg.write_text(f"db: sqlite:///{data / 'fieldwatch.db'}\n")
    for argv in (["devices", "list"], ["silences", "list"], ["outbox", "list"],
                 ["tickets", "list"], ["report", "kpi"]):
        code, _, err = fw(*argv, "--json", "--config", str(cfg))
        assert code == 0, (argv, err)


def test_command_line_beats_config_beats_environment(data: Path, tmp_path: Path,
                                                     elsewhere: Path, fw: Run,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    other = seed_data_dir(tmp_path / "other")
    assert fw("tickets", "create", "--device", "only-in-other", "--title", "t", "--data",
              str(other))[0] == 0
    cfg = elsewhere / "fieldwatch.yaml"
    cfg.write_text(f"data: {other}\n")
    monkeypatch.setenv("FIELDWATCH_DATA", str(data))

    def devices_of_tickets(*argv: str) -> list[str]:
        code, out, err = fw("tickets", "list", "--json", *argv)
        assert code == 0, err
        return [t["device"] for t in json.loads(out)]

    assert devices_of_tickets() == []  # $FIELDWATCH_DATA
    assert devices_of_tickets("--config", str(cfg)) == ["only-in-other"]
    assert devices_of_tickets("--config", str(cfg), "--data", str(data)) == []


def test_a_directory_without_a_database_is_refused_not_filled(elsewhere: Path,
                                                              fw: Run) -> None:
    empty = elsewhere / "empty"
    empty.mkdir()
    code, _, err = fw("tickets", "list", "--data", str(empty))
    assert code == 2 and "holds no fieldwatch.db" in err
    code, _, err = fw("devices", "list", "--data", str(elsewhere / "missing"))
    assert code == 2 and "no data directory" in err
    assert list(empty.iterdir()) == [] and not (elsewhere / "missing").exists()
    code, _, err = fw("tickets", "list", "--db", str(elsewhere / "nope.db"))
    assert code == 2 and "no database at" in err
    assert not (elsewhere / "nope.db").exists()


def test_a_changing_command_creates_the_database_where_it_is_named(elsewhere: Path,
                                                                   fw: Run) -> None:
    code, _, err = fw("tickets", "create", "--device", "d", "--title", "t", "--db",
                      str(elsewhere / "new.db"))
    assert code == 0, err
    assert (elsewhere / "new.db").is_file()


def test_up_chooses_its_directory_the_same_way(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FIELDWATCH_DATA", raising=False)
    assert up_data_dir(None, None) == (tmp_path / "fieldwatch-data", "default")
    monkeypatch.setenv("FIELDWATCH_DATA", "env-data")
    assert up_data_dir(None, None) == (tmp_path / "env-data", "$FIELDWATCH_DATA")
    assert up_data_dir(None, Path("cfg-data"))[0] == tmp_path / "cfg-data"
    assert up_data_dir(Path("flag"), Path("cfg-data"))[0] == tmp_path / "flag"

import math
from pathlib import Path

import psutil
import pytest
from fieldwatch.agent.config import SourcesConfig
from fieldwatch.agent.poll import Poller, poll_once
from fieldwatch.agent.registry import build_sources
from fieldwatch.agent.sources.base import sample, unique_names
from fieldwatch.agent.sources.textfile import TextfileSource, parse_textfile
from hypothesis import given
from hypothesis import strategies as st

from fieldwatch.clock import FakeClock
from fieldwatch.errors import SourceError


class Broken:
    name = "broken"

    def collect(self):
        raise PermissionError("no access to /dev/ipmi0")


class Weird:
    name = "weird"

    def collect(self):
        return [sample("ok", 1), sample("nan", math.nan), sample("inf", math.inf)]


def test_skeleton_sources_produce_the_documented_metrics_on_this_machine() -> None:
    batch = poll_once(build_sources(SourcesConfig()), FakeClock())
    names = {s.name for s in batch.samples}
    assert batch.errors == {}
    for required in ("cpu.percent", "mem.used_percent", "disk.used_percent",
                     "net.rx_bytes_total", "net.tx_bytes_total", "load.1m"):
        assert required in names
    root = [s for s in batch.samples if s.name == "disk.used_percent" and s.labels["mount"] == "/"]
    assert root and 0 <= root[0].value <= 100
    assert root[0].value == pytest.approx(psutil.disk_usage("/").percent, abs=1)
    nics = {s.labels["nic"] for s in batch.samples if s.name == "net.rx_bytes_total"}
    assert "lo" not in nics and nics <= set(psutil.net_io_counters(pernic=True))


def test_a_failing_source_is_counted_and_never_stops_the_others() -> None:
    poller = Poller(unique_names([Broken(), Weird()]), FakeClock())
    for _ in range(3):
        batch = poller.poll()
    assert "PermissionError" in batch.errors["broken"]
    errors = {s.labels["source"]: s.value for s in batch.samples
              if s.name == "agent.source_errors_total"}
    assert errors == {"broken": 3.0, "weird": 0.0}
    assert [s.name for s in batch.samples if s.name in ("ok", "nan", "inf")] == ["ok"]


def test_duplicate_source_names_fail_at_start() -> None:
    with pytest.raises(ValueError, match="weird"):
        unique_names([Weird(), Weird()])


def test_textfile_parses_labels_timestamps_and_comments() -> None:
    text = ('# written by the PLC bridge\n'
            'compressor.pressure_bar{unit="2",site="a \\"b\\""} 7.9\n'
            '\n'
            'ups.on_battery 0 1764230000.5  # trailing note\n')
    got = parse_textfile(text)
    assert got[0].name == "compressor.pressure_bar"
    assert got[0].labels == {"unit": "2", "site": 'a "b"'}
    assert got[0].value == 7.9 and got[0].ts is None
    assert (got[1].name, got[1].value, got[1].ts) == ("ups.on_battery", 0.0, 1764230000.5)


@pytest.mark.parametrize("line", ["just_a_name", "x{unit=2} 1", "x abc", "x 1 noon",
                                  "9starts_with_digit 1", 'x{a="1" b="2"} 1'])
def test_textfile_bad_lines_name_file_and_line(line: str) -> None:
    with pytest.raises(SourceError, match=r"^f\.metrics:2: "):
        parse_textfile("ok 1\n" + line, "f.metrics")


@given(st.text(max_size=200))
def test_textfile_parser_only_raises_source_error(text: str) -> None:
    try:
        samples = parse_textfile(text)
    except SourceError as exc:
        assert str(exc).startswith("<text>:")
    else:
        assert all(s.name for s in samples)
        assert len(samples) <= len(text.splitlines())


def test_textfile_source_reads_every_metrics_file(tmp_path: Path) -> None:
    (tmp_path / "a.metrics").write_text("a 1\n")
    (tmp_path / "b.metrics").write_text("b 2\n")
    (tmp_path / "ignored.txt").write_text("c 3\n")
    assert [s.name for s in TextfileSource(tmp_path).collect()] == ["a", "b"]

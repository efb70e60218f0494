"""/metrics in the Prometheus text format: read back by prometheus-client's own parser."""

from __future__ import annotations

import pytest
from fieldwatch.collector.telemetry.stats import Stats
from prometheus_client.parser import text_string_to_metric_families


def families(stats: Stats) -> dict[str, object]:
    return {f.name: f for f in text_string_to_metric_families(stats.prometheus())}


def test_counters_gauges_and_histograms_parse_with_type_and_help() -> None:
    stats = Stats()
    stats.inc("stored_total", n=2)
    stats.inc("rejected_total", "malformed", 3)
    stats.inc("rejected_total", "oversized")
    stats.inc("remote_write_samples_total", "vm", 50)
    depth = [4]
    stats.gauge("queue_depth", lambda: depth[0])
    stats.gauge("remote_write_lag_seconds", lambda: 1.5, "vm")
    for v in (0.003, 0.2, 40.0):
        stats.observe("batch_seconds", v)
    depth[0] = 9
    fams = families(stats)
    stored = fams["fieldwatch_collector_stored"]
    assert stored.type == "counter" and stored.documentation  # type: ignore[attr-defined]
    assert [(s.name, s.labels, s.value) for s in stored.samples] == [  # type: ignore[attr-defined]
        ("fieldwatch_collector_stored_total", {}, 2.0)]
    rejected = fams["fieldwatch_collector_rejected"]
    assert {s.labels["reason"]: s.value for s in rejected.samples} == {  # type: ignore[attr-defined]
        "malformed": 3.0, "oversized": 1.0}
    assert fams["fieldwatch_collector_remote_write_samples"].samples[0].labels == {  # type: ignore[attr-defined]
        "exporter": "vm"}
    queue = fams["fieldwatch_collector_queue_depth"]
    assert queue.type == "gauge" and queue.samples[0].value == 9.0  # type: ignore[attr-defined]
    lag = fams["fieldwatch_collector_remote_write_lag_seconds"]
    assert lag.samples[0].labels == {"exporter": "vm"}  # type: ignore[attr-defined]
    hist = fams["fieldwatch_collector_batch_seconds"]
    assert hist.type == "histogram"  # type: ignore[attr-defined]
    by = {(s.name, s.labels.get("le")): s.value for s in hist.samples}  # type: ignore[attr-defined]
    assert by[("fieldwatch_collector_batch_seconds_bucket", "0.005")] == 1.0
    assert by[("fieldwatch_collector_batch_seconds_bucket", "0.25")] == 2.0
    assert by[("fieldwatch_collector_batch_seconds_bucket", "30.0")] == 2.0
    assert by[("fieldwatch_collector_batch_seconds_bucket", "+Inf")] == 3.0
    assert by[("fieldwatch_collector_batch_seconds_count", None)] == 3.0
    assert by[("fieldwatch_collector_batch_seconds_sum", None)] == pytest.approx(40.203)


def test_an_unknown_histogram_name_fails_at_once() -> None:
    with pytest.raises(KeyError):
        Stats().observe("batch_secs", 1.0)


def test_a_counter_seen_with_and_without_a_label_stays_one_family() -> None:
    stats = Stats()
    stats.inc("diag_results_total")
    stats.inc("diag_results_total", "ok")
    fam = families(stats)["fieldwatch_collector_diag_results"]
    assert sorted(s.labels.get("reason", "") for s in fam.samples) == ["", "ok"]  # type: ignore[attr-defined]


def test_empty_stats_give_an_empty_but_valid_text() -> None:
    assert families(Stats()) == {}

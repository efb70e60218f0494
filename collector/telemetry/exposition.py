"""The collector's /metrics in the Prometheus text format, made by prometheus-client.

One `Collector.collect()` reads `Stats` at scrape time — counters, gauges (read then) and
histograms — and yields metric families with HELP and TYPE; prometheus-client writes the text.
Every name is `fieldwatch_collector_<stats name>`. A counter's one label is `reason` unless
`LABEL_NAMES` names it otherwise (the exporter's metrics carry `exporter`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator

from fieldwatch.collector.telemetry.stats import HISTOGRAMS, Histogram, Stats
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
PREFIX = "fieldwatch_collector_"

# The label name of a family whose name starts with the key (default: reason).
LABEL_NAMES = {"remote_write_": "exporter", "outbox_": "reason"}

HELP = {
    "received_total": "MQTT messages received and decoded.",
    "rejected_total": "MQTT messages dropped at the door, by reason (malformed, oversized...).",
    "stored_total": "Messages stored (one database transaction per batch).",
    "samples_total": "Metric samples in the metrics messages stored.",
    "lost_messages_total": "Messages left unstored because the collector was told to stop.",
    "store_errors_total": "Failed attempts to write a batch (retried or split).",
    "store_batches_split_total": "Batches the store refused as data and that were split.",
    "dead_letter_total": "Messages and ticket changes set aside in the dead-letter table.",
    "dead_letter_errors_total": "Set-aside units that could not be recorded (logged instead).",
    "tickets_opened_total": "Tickets opened by rules.",
    "broker_disconnects_total": "Losses of the MQTT connection.",
    "queue_depth": "Decoded messages waiting for the worker.",
    "oldest_unstored_age_seconds": "Age of the oldest message taken and not yet stored.",
    "store_retry_seconds": "How long the store has been failing and retried (0: it works).",
    "health_state": "/healthz state: 0 ok, 1 degraded, 2 failing.",
    "remote_write_samples_total": "Samples a remote-write server accepted.",
    "remote_write_requests_total": "Remote-write requests accepted (2xx).",
    "remote_write_retries_total": "Remote-write sends to try again (connection, 5xx, 429).",
    "remote_write_rejected_samples_total": "Samples a remote-write server refused for good "
                                           "(4xx), set aside.",
    "remote_write_skipped_total": "Stored messages the exporter could not read as metrics.",
    "remote_write_errors_total": "Exporter rounds that failed on the database.",
    "remote_write_lag_seconds": "Age of the oldest stored message not yet remote-written.",
    "remote_write_pending_messages": "Message ids after the exporter's cursor (upper bound).",
    "remote_write_cursor": "Id of the last message remote-written or set aside.",
}


def label_name(name: str) -> str:
    for prefix, label in LABEL_NAMES.items():
        if name.startswith(prefix):
            return label
    return "reason"


def _help(name: str, kind: str) -> str:
    return HELP.get(name) or HISTOGRAMS.get(name, ("",))[0] or \
        f"fieldwatch collector {kind} {name}."


class StatsCollector(Collector):
    """Reads `Stats` on every scrape."""

    def __init__(self, stats: Stats) -> None:
        self.stats = stats

    def collect(self) -> Iterator[Metric]:
        yield from self._counters()
        yield from self._gauges()
        yield from self._histograms()

    def _counters(self) -> Iterator[Metric]:
        families: dict[str, list[tuple[str, int]]] = defaultdict(list)
        for (name, label), value in self.stats.counter_values().items():
            families[name].append((label, value))
        for name, values in families.items():
            labelled = any(label for label, _ in values)
            fam = CounterMetricFamily(PREFIX + name, _help(name, "counter"),
                                      labels=[label_name(name)] if labelled else None)
            for label, value in values:
                fam.add_metric([label] if labelled else [], value)
            yield fam

    def _gauges(self) -> Iterator[Metric]:
        families: dict[str, list[tuple[str, float]]] = defaultdict(list)
        for (name, label), value in self.stats.gauge_values().items():
            families[name].append((label, value))
        for name, values in families.items():
            labelled = any(label for label, _ in values)
            fam = GaugeMetricFamily(PREFIX + name, _help(name, "gauge"),
                                    labels=[label_name(name)] if labelled else None)
            for label, value in values:
                fam.add_metric([label] if labelled else [], value)
            yield fam

    def _histograms(self) -> Iterator[Metric]:
        families: dict[str, list[tuple[str, Histogram]]] = defaultdict(list)
        for (name, label), h in self.stats.histograms().items():
            families[name].append((label, h))
        for name, values in families.items():
            labelled = any(label for label, _ in values)
            fam = HistogramMetricFamily(PREFIX + name, _help(name, "histogram"),
                                        labels=[label_name(name)] if labelled else None)
            for label, h in values:
                running, buckets = 0, []
                for bound, count in zip((*h.bounds, float("inf")), h.counts, strict=True):
                    running += count
                    buckets.append((_le(bound), running))
                fam.add_metric([label] if labelled else [], buckets, sum_value=h.total)
            yield fam


def _le(bound: float) -> str:
    if bound == float("inf"):
        return "+Inf"
    return repr(float(bound))


def exposition(stats: Stats) -> bytes:
    """The /metrics body."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StatsCollector(stats))
    return generate_latest(registry)

"""The collector's own telemetry: its counters, gauges and histograms (stats.py) and their
Prometheus text at /metrics (exposition.py)."""

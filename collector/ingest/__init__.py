"""The collector's MQTT edge (DESIGN §4): decode and enqueue on paho's thread, nothing else.

`decode` turns a topic and payload into a message (or a counted rejection), `mqtt` is the paho
client, `guard` keeps an unforeseen exception in a callback from stopping consumption.
Beside them: `fairqueue`, the queue between ingest and the worker (fair across devices), and
`sequence`, the per-device sequence accounting (duplicates, gaps, backfills).
"""

from fieldwatch.collector.ingest.decode import Received, decode_received
from fieldwatch.collector.ingest.guard import CallbackGuard
from fieldwatch.collector.ingest.mqtt import SUBSCRIPTIONS, MqttIngest

__all__ = ["SUBSCRIPTIONS", "CallbackGuard", "MqttIngest", "Received", "decode_received"]

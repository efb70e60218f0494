"""The collector's config (config/collector.yaml)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from fieldwatch.collector.desks.config import IntegrationsConfig
from fieldwatch.collector.diag.config import CollectorDiagConfig
from fieldwatch.collector.enroll.config import EnrollConfig
from fieldwatch.collector.history.config import HistoryConfig
from fieldwatch.collector.history.remote_config import RemoteQueryConfig, RemoteWriteList
from fieldwatch.collector.notify.config import NotificationsConfig
from fieldwatch.collector.tickets.config import DeskConfig
from pydantic import Field

from fieldwatch.config import BrokerConfig
from fieldwatch.durations import Duration
from fieldwatch.models import StrictModel
from fieldwatch.wire import DEFAULT_MAX_BYTES


class AmqpConfig(StrictModel):
    """Cluster mode (docs/scaling.md): the collector consumes partition queues over AMQP."""

    # every node the collector may use, tried in turn (credentials: `username`/`password_env`)
    urls: list[str] = ["amqp://127.0.0.1:5672/%2F"]
    username: str = "guest"
    password_env: str | None = None  # the password's env var (default: "guest")
    partitions: int = Field(8, gt=0, le=999)  # must match `fieldwatch cluster setup`
    prefetch: int = Field(200, gt=0)  # unacknowledged messages per partition at once
    heartbeat: Duration = 15.0
    reconnect: Duration = 1.0  # wait before trying the next node
    rebalance: Duration = 2.0  # how often a collector gives away partitions beyond its share


class CollectorConfig(StrictModel):
    transport: Literal["mqtt", "amqp"] = "mqtt"  # amqp: cluster mode (docs/scaling.md)
    amqp: AmqpConfig = AmqpConfig()
    broker: BrokerConfig = BrokerConfig()
    client_id: str = "fieldwatch-collector"
    rules: list[Path] = [Path("rules")]
    db: str = "sqlite:///fieldwatch-data/fieldwatch.db"
    max_message_bytes: int = Field(DEFAULT_MAX_BYTES, gt=0)
    batch_max: int = Field(2000, gt=0)  # messages per storage transaction
    batch_wait: Duration = 0.0  # linger for more messages when the queue runs dry
    queue_max: int = Field(50_000, gt=0)  # decoded messages waiting; full = backpressure
    keep_raw_for: Duration = 7 * 86400.0  # raw messages (metrics, events) kept for audits
    history: HistoryConfig = HistoryConfig()  # the embedded metric history (docs/history.md)
    queue_max_bytes: int = Field(64 * 1024 * 1024, gt=0)  # ... and their payloads' bytes
    stop_timeout: Duration = 10.0  # at stop, time to store what is queued (then redelivered)
    desk: DeskConfig = DeskConfig()  # service desk: SLA, teams, escalation webhook, API tokens
    diag: CollectorDiagConfig = CollectorDiagConfig()  # remote diagnostics
    integrations: IntegrationsConfig = IntegrationsConfig()  # desks, Alertmanager, email
    notifications: NotificationsConfig = NotificationsConfig()  # people, through Apprise
    remote_write: RemoteWriteList = []  # exporters to Prometheus-compatible servers
    remote_query: RemoteQueryConfig | None = None  # read history there (docs/history.md)
    enroll: EnrollConfig | None = None  # device enrollment (docs/enroll.md); None: off

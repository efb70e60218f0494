"""`fieldwatch cluster setup`: declare the topology on a RabbitMQ cluster, idempotently.

Declaring what exists with the same arguments changes nothing, so this runs at every deploy
and every collector start. A queue that exists with other arguments (a classic queue of the
same name) makes the broker refuse; that is reported, never "fixed" by deleting a queue that
may hold messages.
"""

from __future__ import annotations

import logging
import os

import pika
from fieldwatch.collector.cluster.topology import PARTITION_EXCHANGE, Topology
from fieldwatch.collector.config import AmqpConfig
from pika.adapters.blocking_connection import BlockingChannel
from pika.exceptions import ChannelClosedByBroker

from fieldwatch.errors import ConfigError, FieldwatchError, Problem

log = logging.getLogger(__name__)


def declare(channel: BlockingChannel, topo: Topology) -> None:
    try:
        channel.exchange_declare(PARTITION_EXCHANGE, "x-consistent-hash", durable=True)
        for q in topo.queues:
            channel.queue_declare(q.name, durable=True, arguments=q.arguments)
        for b in topo.bindings:
            if b.to_exchange:
                channel.exchange_bind(b.destination, b.source, routing_key=b.key)
            else:
                channel.queue_bind(b.destination, b.source, routing_key=b.key)
    except ChannelClosedByBroker as exc:
        raise ConfigError([Problem("<rabbitmq>", 0, 0,
                                   f"the broker refused the cluster topology: {exc.reply_text} "
                                   f"(a queue or exchange of that name exists with other "
                                   f"arguments?)")]) from exc


def connection_params(cfg: AmqpConfig, url: str) -> pika.URLParameters:
    """One node's connection parameters: the password from its env var, never the config."""
    params = pika.URLParameters(url)
    password = os.environ.get(cfg.password_env, "") if cfg.password_env else "guest"
    params.credentials = pika.PlainCredentials(cfg.username, password)
    params.heartbeat = int(cfg.heartbeat)
    params.blocked_connection_timeout = 60
    params.connection_attempts = 1
    params.socket_timeout = 5
    return params


def setup(cfg: AmqpConfig, topo: Topology) -> str:
    """Declare `topo` through the first node of `cfg.urls` that answers; returns host:port."""
    last: Exception | None = None
    for url in cfg.urls:
        try:
            conn = pika.BlockingConnection(connection_params(cfg, url))
        except pika.exceptions.AMQPConnectionError as exc:
            last = exc
            log.warning("cluster setup: %s does not answer (%s)", _safe(url), exc)
            continue
        try:
            declare(conn.channel(), topo)
        finally:
            if conn.is_open:
                conn.close()
        return _safe(url)
    raise FieldwatchError(f"no RabbitMQ node answered ({len(cfg.urls)} tried): {last}")


def _safe(url: str) -> str:
    """A URL without its password, for logs."""
    params = pika.URLParameters(url)
    return f"{params.host}:{params.port}"

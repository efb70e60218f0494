"""The collector's `enroll:` config section (docs/enroll.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from fieldwatch.config import BrokerConfig
from fieldwatch.durations import Duration
from fieldwatch.models import StrictModel


class RabbitMQAdmin(StrictModel):
    url: str = "http://127.0.0.1:15672"  # the management plugin's HTTP API
    username: str = "fieldwatch-provisioner"
    password_env: str | None = None
    password_file: Path | None = None
    vhost: str = "/"
    ca: Path | None = None  # for an https url with a private CA


class AgentBroker(StrictModel):
    """Where enrolled agents connect: written into the agent config they receive."""

    host: str
    port: int = Field(8883, gt=0, lt=65536)
    ca: Path | None = None  # the broker's CA certificate (PEM), sent along; None: no TLS


class EnrollConfig(StrictModel):
    kind: Literal["mosquitto", "rabbitmq"] = "mosquitto"
    # mosquitto: the provisioning account of the dynamic-security plugin (its role may use
    # $CONTROL/dynamic-security/#), over MQTT
    admin: BrokerConfig = BrokerConfig(username="fieldwatch-provisioner")
    rabbitmq: RabbitMQAdmin = RabbitMQAdmin()
    agent_broker: AgentBroker
    token_ttl: Duration = 86400.0  # `devices enroll --ttl` default
    overlap: Duration = 3600.0  # `devices rotate`: the old credential works this long more
    max_failures: int = Field(10, gt=0)  # refused exchanges per address per window ...
    failure_window: Duration = 600.0  # ... before that address waits

"""`fieldwatch up` — broker, collector, a local agent and the web page, in one process."""

from __future__ import annotations

import argparse
import hashlib
import importlib.resources
import logging
from pathlib import Path
from typing import Literal

import msgspec
from pydantic import Field

from fieldwatch.agent.config import AgentConfig
from fieldwatch.cli.common import stop_on_signals
from fieldwatch.collector.config import CollectorConfig
from fieldwatch.config import BrokerConfig, load_config
from fieldwatch.models import StrictModel

log = logging.getLogger(__name__)


class UpConfig(StrictModel):
    """config/fieldwatch.yaml: the all-in-one settings; CLI flags override them."""

    mqtt_port: int = Field(1883, ge=0, le=65535)
    broker: Literal["auto", "embedded", "external"] = "auto"
    http_port: int = Field(8080, ge=0, le=65535)
    data: Path = Path("fieldwatch-data")
    rules: list[Path] = []  # empty: the default rule pack shipped with fieldwatch
    agent: AgentConfig = AgentConfig(site="local")
    collector: CollectorConfig = CollectorConfig()


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("up", help="all-in-one: broker, collector, local agent, web page")
    p.add_argument("--config", type=Path, help="all-in-one config (config/fieldwatch.yaml)")
    p.add_argument("--rules", type=Path, action="append", metavar="DIR",
                   help="rule file or directory (repeatable; default: the shipped pack)")
    p.add_argument("--data", type=Path, metavar="DIR", help="data directory")
    p.add_argument("--mqtt-port", type=int, help="MQTT port (0: embedded broker, free port)")
    p.add_argument("--http-port", type=int, help="HTTP port on 127.0.0.1 (0: a free port)")
    p.set_defaults(func=run_up)


def default_rules_dir() -> Path:
    return Path(str(importlib.resources.files("fieldwatch.default_rules")))


def run_up(args: argparse.Namespace) -> int:
    from fieldwatch.agent.daemon import Agent
    from fieldwatch.broker import EmbeddedBroker
    from fieldwatch.collector.api import HttpServer, make_app
    from fieldwatch.collector.desks.routes import add_routes
    from fieldwatch.collector.diag.local import with_local_keys
    from fieldwatch.collector.service import Collector
    from fieldwatch.collector.tickets.config import ensure_token_file
    from fieldwatch.mqtt import broker_answers

    cfg = load_config(UpConfig, args.config) if args.config else UpConfig()
    data = (args.data or cfg.data).resolve()
    mqtt_port = cfg.mqtt_port if args.mqtt_port is None else args.mqtt_port
    http_port = cfg.http_port if args.http_port is None else args.http_port
    rules = args.rules or cfg.rules or [default_rules_dir()]
    stop = stop_on_signals()

    broker = None
    if mqtt_port == 0 or cfg.broker == "embedded" or (
            cfg.broker == "auto" and not broker_answers("127.0.0.1", mqtt_port)):
        broker = EmbeddedBroker("127.0.0.1", mqtt_port)
        broker.start()
        mqtt_port = broker.port
        print(f"fieldwatch: embedded MQTT broker on 127.0.0.1:{mqtt_port}", flush=True)
    else:
        print(f"fieldwatch: using the MQTT broker already on 127.0.0.1:{mqtt_port}", flush=True)
    link = BrokerConfig(host="127.0.0.1", port=mqtt_port)
    data.mkdir(parents=True, exist_ok=True)
    (data / "mqtt-port").write_text(f"{mqtt_port}\n")  # for `diag run --data DIR` next to us
    ccfg, acfg = with_local_keys(data, cfg.collector, cfg.agent)  # diagnostics work out of the box

    collector = Collector(ccfg.model_copy(update={
        "broker": link, "rules": rules, "db": f"sqlite:///{data / 'fieldwatch.db'}",
        # stable per data dir: the broker keeps this session's messages across restarts
        "client_id": "fieldwatch-up-" + hashlib.sha1(str(data).encode()).hexdigest()[:10]}))
    token_file = data / "api-token"
    ensure_token_file(token_file)
    desk_cfg = collector.cfg.desk
    if desk_cfg.api_token_file is None:
        desk_cfg = desk_cfg.model_copy(update={"api_token_file": token_file})
    app = make_app(collector.desk, collector.stats, collector.health, desk_cfg.api_tokens,
                   history=collector.history_backend)
    add_routes(app, collector.integration_routes(desk_cfg.api_tokens))  # type: ignore[arg-type]
    http = HttpServer(app, port=http_port)
    agent = Agent(msgspec.structs.replace(acfg, broker=link, state_dir=data / "agent"))
    collector.start()
    http.start()
    agent.start()
    print(f"fieldwatch: web page and API on http://127.0.0.1:{http.port}/", flush=True)
    print(f"fieldwatch: API token in {desk_cfg.api_token_file} (Authorization: Bearer ...)",
          flush=True)
    print(f"fieldwatch: data in {data}; Ctrl-C stops", flush=True)
    try:
        stop.wait()
    finally:
        print("fieldwatch: stopping", flush=True)
        agent.stop()
        collector.stop()
        http.stop()
        if broker is not None:
            broker.stop()
    return 0

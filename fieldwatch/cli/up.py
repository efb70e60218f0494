"""`fieldwatch up` — broker, collector, a local agent and the web page, in one process."""

from __future__ import annotations

import argparse
import hashlib
import importlib.resources
import logging
import socket
from pathlib import Path
from typing import Literal

import msgspec
from pydantic import Field

from fieldwatch.agent.config import AgentConfig
from fieldwatch.cli.common import CommandLineError, stop_on_signals
from fieldwatch.cli.http import add_http_options, serve_http
from fieldwatch.cli.state import up_data_dir
from fieldwatch.collector.config import CollectorConfig
from fieldwatch.config import BrokerConfig, load_config
from fieldwatch.models import StrictModel

log = logging.getLogger(__name__)


class UpConfig(StrictModel):
    """config/fieldwatch.yaml: the all-in-one settings; CLI flags override them."""

    mqtt_port: int = Field(1883, ge=0, le=65535)
    broker: Literal["auto", "embedded", "external"] = "auto"
    http_port: int = Field(8080, ge=0, le=65535)
    http_host: str = "127.0.0.1"  # 0.0.0.0 / :: to serve other machines (then use TLS)
    tls_cert: Path | None = None  # PEM certificate (chain) and key: serve HTTPS
    tls_key: Path | None = None
    data: Path = Path("fieldwatch-data")
    rules: list[Path] = []  # empty: the default rule pack shipped with fieldwatch
    agent: AgentConfig = AgentConfig(site="local")
    collector: CollectorConfig = CollectorConfig()


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("up", help="all-in-one: broker, collector, local agent, web page")
    p.add_argument("--config", type=Path, help="all-in-one config (config/fieldwatch.yaml)")
    p.add_argument("--rules", type=Path, action="append", metavar="DIR",
                   help="rule file or directory (repeatable; default: the shipped pack)")
    p.add_argument("--data", type=Path, metavar="DIR", help="data directory (default: the "
                   "config's data:, else $FIELDWATCH_DATA, else ./fieldwatch-data)")
    p.add_argument("--mqtt-port", type=int, help="MQTT port (0: embedded broker, free port)")
    p.add_argument("--http-port", type=int, help="HTTP port (0: a free port)")
    add_http_options(p)
    p.set_defaults(func=run_up)


def default_rules_dir() -> Path:
    return Path(str(importlib.resources.files("fieldwatch.default_rules")))


def with_alertmanager_token(cfg: CollectorConfig, path: Path
                            ) -> tuple[CollectorConfig, Path | None]:
    """The Alertmanager intake's own token, made in the data dir like the API's, unless the
    config names one or says `auth: none`; the token file, or None."""
    from fieldwatch.collector.desks.config import Secret
    from fieldwatch.collector.tickets.config import ensure_token_file

    am = cfg.integrations.alertmanager
    if not am.enabled or am.auth == "none" or am.token is not None:
        return cfg, None
    ensure_token_file(path)
    am = am.model_copy(update={"token": Secret(file=path)})
    return cfg.model_copy(update={"integrations": cfg.integrations.model_copy(
        update={"alertmanager": am})}), path


def ensure_port_free(what: str, flag: str, port: int, host: str = "127.0.0.1") -> None:
    """A one-line error (exit 2) before anything starts, instead of a traceback later."""
    if port == 0:
        return
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers bind
        try:
            s.bind((host, port))
        except OSError as exc:
            raise port_error(what, flag, port, exc, host) from None


def port_error(what: str, flag: str, port: int, exc: OSError, host: str = "127.0.0.1"
               ) -> CommandLineError:
    return CommandLineError(f"cannot listen on {host}:{port} for {what}: "
                            f"{exc.strerror or exc}; choose another port with {flag} PORT, "
                            f"or {flag} 0 for a free one")


def run_up(args: argparse.Namespace) -> int:
    from fieldwatch.agent.daemon import Agent
    from fieldwatch.broker import EmbeddedBroker
    from fieldwatch.cli.users import first_admin
    from fieldwatch.collector.desks.routes import add_routes
    from fieldwatch.collector.diag.local import with_local_keys
    from fieldwatch.collector.service import Collector
    from fieldwatch.collector.tickets.config import ensure_token_file
    from fieldwatch.collector.web.api.app import make_app
    from fieldwatch.collector.web.pages import add_pages
    from fieldwatch.datadir import make_private
    from fieldwatch.mqtt import broker_answers

    cfg = load_config(UpConfig, args.config) if args.config else UpConfig()
    # the data directory as every other command finds it (fieldwatch/cli/state.py)
    data, _ = up_data_dir(args.data, cfg.data if "data" in cfg.model_fields_set else None)
    mqtt_port = cfg.mqtt_port if args.mqtt_port is None else args.mqtt_port
    http_port = cfg.http_port if args.http_port is None else args.http_port
    http_host = args.http_host or cfg.http_host
    tls_cert, tls_key = args.tls_cert or cfg.tls_cert, args.tls_key or cfg.tls_key
    rules = args.rules or cfg.rules or [default_rules_dir()]
    ensure_port_free("the web page and API", "--http-port", http_port, http_host)
    embedded = mqtt_port == 0 or cfg.broker == "embedded" or (
        cfg.broker == "auto" and not broker_answers("127.0.0.1", mqtt_port))
    if embedded:
        ensure_port_free("the embedded MQTT broker", "--mqtt-port", mqtt_port)
    stop = stop_on_signals()

    broker = None
    if embedded:
        broker = EmbeddedBroker("127.0.0.1", mqtt_port)
        broker.start()
        mqtt_port = broker.port
        print(f"fieldwatch: embedded MQTT broker on 127.0.0.1:{mqtt_port}", flush=True)
    else:
        print(f"fieldwatch: using the MQTT broker already on 127.0.0.1:{mqtt_port}", flush=True)
    link = BrokerConfig(host="127.0.0.1", port=mqtt_port)
    make_private(data)  # 0700, and files 0600 from here on (umask)
    (data / "mqtt-port").write_text(f"{mqtt_port}\n")  # for `diag run --data DIR` next to us
    ccfg, acfg = with_local_keys(data, cfg.collector, cfg.agent)  # diagnostics work out of the box
    ccfg, am_token = with_alertmanager_token(ccfg, data / "alertmanager-token")

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
    add_pages(app, collector.desk, collector.history_backend,
              rules=lambda: collector.ruleset)  # the desk (docs/desk.md)
    try:
        http = serve_http(app, http_host, http_port, tls_cert, tls_key)
    except CommandLineError:  # taken since the check above, or a bad certificate
        if broker is not None:
            broker.stop()
        raise
    admin_file = data / "admin-password"
    new_admin = first_admin(collector.store.engine, admin_file)
    agent = Agent(msgspec.structs.replace(acfg, broker=link, state_dir=data / "agent"),
                  mqtt5=broker is None)  # the embedded broker speaks MQTT 3.1.1 only
    collector.start()
    http.start()
    agent.start()
    print(f"fieldwatch: web page and API on {http.url}", flush=True)
    if new_admin:
        print(f"fieldwatch: log in as admin with the password in {admin_file} (then change "
              "it: fieldwatch users passwd admin)", flush=True)
    print(f"fieldwatch: API token in {desk_cfg.api_token_file} (Authorization: Bearer ...)",
          flush=True)
    if am_token is not None:
        print(f"fieldwatch: Alertmanager token in {am_token} (for /api/v1/alertmanager)",
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

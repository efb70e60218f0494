"""`fieldwatch collector run` — the collector daemon, against any MQTT broker."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from fieldwatch.cli.common import stop_on_signals
from fieldwatch.cli.http import add_http_options

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("collector", help="the collector (rules, tickets, API)")
    csub = p.add_subparsers(dest="collector_command", required=True, metavar="ACTION")
    run = csub.add_parser("run", help="run the collector daemon in the foreground")
    run.add_argument("--config", type=Path, default=Path("/etc/fieldwatch/collector.yaml"))
    run.add_argument("--http-port", type=int, default=None,
                     help="serve the HTTP API and pages on PORT (0 picks a free port)")
    run.add_argument("--transport", choices=("mqtt", "amqp"), default=None,
                     help="mqtt: one broker; amqp: cluster mode, RabbitMQ partition queues "
                          "(default: the config's `transport`)")
    add_http_options(run)
    run.set_defaults(func=run_collector)


def run_collector(args: argparse.Namespace) -> int:
    from fieldwatch.cli.http import serve_http
    from fieldwatch.collector.config import CollectorConfig
    from fieldwatch.collector.desks.routes import add_routes
    from fieldwatch.collector.service import Collector
    from fieldwatch.collector.store.db import db_url
    from fieldwatch.collector.store.liveness import open_when_up
    from fieldwatch.collector.web.accounts.store import AccountStore
    from fieldwatch.collector.web.api.app import make_app
    from fieldwatch.collector.web.pages import add_pages
    from fieldwatch.config import load_config

    cfg = load_config(CollectorConfig, args.config)
    if args.transport is not None:
        cfg = cfg.model_copy(update={"transport": args.transport})
    stop = stop_on_signals()
    engine = open_when_up(db_url(cfg.db), stop)  # a database still down is waited for
    if engine is None:
        return 0  # stopped while waiting
    collector = Collector(cfg, engine=engine)
    http = sweeper = None
    if args.http_port is not None:
        app = make_app(collector.desk, collector.stats, collector.health,
                       cfg.desk.api_tokens, history=collector.history_backend)
        add_routes(app, collector.integration_routes(cfg.desk.api_tokens))  # type: ignore[arg-type]
        if cfg.enroll is not None:  # POST /api/v1/enroll (docs/enroll.md)
            from fieldwatch.collector.enroll.routes import build, enroll_routes
            from fieldwatch.collector.enroll.service import Sweeper

            enrollment, throttle = build(cfg.enroll, collector.store.engine,
                                         cfg.diag.private_key, collector.desk.clock)
            app.router.routes.extend(enroll_routes(enrollment, collector.stats, throttle))
            sweeper = Sweeper(enrollment)  # rotated-out credentials, once their overlap ends
        add_pages(app, collector.desk, collector.history_backend,
              rules=lambda: collector.ruleset)  # docs/desk.md
        http = serve_http(app, args.http_host or "127.0.0.1", args.http_port, args.tls_cert,
                          args.tls_key)
        http.start()
        print(f"fieldwatch collector: HTTP API on {http.url}", flush=True)
        if not AccountStore(collector.store.engine).count():
            print("fieldwatch collector: no desk users yet: add one with `fieldwatch users add "
                  "NAME --role admin --config ...`", flush=True)
    collector.start()
    if sweeper is not None:
        sweeper.start()
    try:
        stop.wait()
    finally:
        if sweeper is not None:
            sweeper.stop()
            sweeper.enrollment.provisioner.close()
        collector.stop()
        if http is not None:
            http.stop()
    return 0

"""`fieldwatch cluster setup` — declare cluster mode's exchanges, queues and bindings on
RabbitMQ (idempotent: run it at every deploy; docs/scaling.md)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("cluster", help="cluster mode: declare the RabbitMQ topology")
    csub = p.add_subparsers(dest="cluster_command", required=True, metavar="ACTION")
    setup = csub.add_parser("setup", help="declare exchanges, queues and bindings (idempotent)")
    setup.add_argument("--config", type=Path, default=Path("/etc/fieldwatch/collector.yaml"),
                       help="the collector config: its `amqp` section (urls, partitions)")
    setup.add_argument("--json", action="store_true", help="print what was declared as JSON")
    setup.set_defaults(func=run_setup)


def run_setup(args: argparse.Namespace) -> int:
    from fieldwatch.collector.cluster.setup import setup
    from fieldwatch.collector.cluster.topology import PARTITION_EXCHANGE, topology
    from fieldwatch.collector.config import CollectorConfig
    from fieldwatch.config import load_config

    cfg = load_config(CollectorConfig, args.config).amqp
    topo = topology(cfg.partitions)
    used = setup(cfg, topo)
    summary = {"node": used, "exchange": PARTITION_EXCHANGE,
               "partitions": [q.name for q in topo.queues if q.name.startswith("fieldwatch.p")],
               "queues": len(topo.queues), "bindings": len(topo.bindings)}
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"fieldwatch cluster: declared {summary['queues']} quorum queues "
              f"({cfg.partitions} partitions) and {summary['bindings']} bindings via "
              f"{summary['node']}")
    return 0

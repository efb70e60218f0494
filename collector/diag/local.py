"""Diagnostics for `fieldwatch up`: one machine holds both ends, so the signing key pair is
created under the data directory on first start and the local agent trusts its public half."""

from __future__ import annotations

from pathlib import Path

import msgspec
from fieldwatch.agent.config import AgentConfig
from fieldwatch.collector.config import CollectorConfig

from fieldwatch import signing

KEY_NAME = "diag-collector"


def local_keys(data: Path) -> tuple[Path, Path]:
    """The data directory's key pair, created if missing."""
    keys = data / "keys"
    key, pub = keys / f"{KEY_NAME}.key", keys / f"{KEY_NAME}.pub"
    if not key.exists() or not pub.exists():
        signing.generate(keys, KEY_NAME, force=True)
    return key, pub


def with_local_keys(data: Path, collector: CollectorConfig,
                    agent: AgentConfig) -> tuple[CollectorConfig, AgentConfig]:
    """Configs with the local key pair filled in where the operator set none."""
    if collector.diag.private_key is not None and agent.diag.trusted_keys:
        return collector, agent
    key, pub = local_keys(data)
    if collector.diag.private_key is None:
        collector = collector.model_copy(update={
            "diag": collector.diag.model_copy(update={"private_key": key})})
    if not agent.diag.trusted_keys:
        agent = msgspec.structs.replace(
            agent, diag=msgspec.structs.replace(agent.diag, trusted_keys=[pub]))
    return collector, agent

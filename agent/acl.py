"""`fieldwatch agent acl`: the Mosquitto ACL stanza that lets an agent publish for the SNMP
targets it polls.

The shipped ACL (config/mosquitto/fieldwatch.acl) lets each agent's user, `<site>/<device>`,
publish only under its own topics. An agent that polls SNMP targets publishes their metrics,
events (polls, traps, the buffer's drop reports) and `polled_by` inventory under the targets'
own device ids, which an ACL file cannot work out: this prints one `user` stanza per agent
from its config, to be appended to that file. Pure: config in, text out.
"""

from __future__ import annotations

from fieldwatch.agent.config import AgentConfig

from fieldwatch import wire

# What an agent publishes for a target: agent/snmp/poller.py (metrics, events), traps.py
# (events), the buffer's drop reports (events) and the retained `polled_by` inventory
# (daemon.announce_targets). Status is its own only.
TARGET_KINDS = ("metrics", "events", "inventory")


def agent_user(cfg: AgentConfig) -> str:
    """The broker user the agent logs in as: `broker.username`, else `<site>/<device>`."""
    return cfg.broker.username or f"{cfg.site}/{cfg.device}"


def render_acl(cfg: AgentConfig, source: str = "agent.yaml") -> str:
    """The ACL lines for this agent's SNMP targets ("" beyond comments when it has none)."""
    user = agent_user(cfg)
    lines = [f"# fieldwatch agent acl: SNMP targets {user} publishes for (from {source}).",
             "# Append to /etc/mosquitto/fieldwatch.acl, then: systemctl reload mosquitto.",
             "# Print it again after changing snmp.targets."]
    if user != f"{cfg.site}/{cfg.device}":
        lines.append(f"# Note: the shipped patterns expect the user {cfg.site}/{cfg.device}; "
                     f"{user} needs its own topics listed too.")
    targets = sorted({(t.site or cfg.site, t.device) for t in cfg.snmp.targets})
    if not targets:
        lines.append(f"# {user} polls no SNMP targets: the shipped patterns cover it.")
    else:
        lines.append(f"user {user}")
        lines += [f"topic write {wire.topic(site, device, kind)}"
                  for site, device in targets for kind in TARGET_KINDS]
    if cfg.snmp.traps.enabled:
        lines += ["# Traps from senders that are not targets go out as device snmp-<address>",
                  "# and are refused; to accept them (events of any device at the site):",
                  f"# topic write {wire.topic(cfg.site, '+', 'events')}"]
    return "\n".join(lines) + "\n"

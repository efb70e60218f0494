"""The visit checklist for a ticket that remote work could not fix: pure, from the facts the
store gathers (ticket, device inventory and status, recent metrics, device history, results)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from fieldwatch import wire
from fieldwatch.errors import WireFormatError
from fieldwatch.jsonout import iso


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _identity(inv: dict[str, Any]) -> list[str]:
    """What identifies the equipment, from the agent's inventory facts (agent/inventory.py)."""
    hw, distro = _dict(inv.get("hardware")), _dict(inv.get("distro"))
    out = [f"{k}={hw[k]}" for k in ("vendor", "product", "serial") if hw.get(k)]
    system = distro.get("pretty_name") or " ".join(
        str(inv[k]) for k in ("os", "kernel") if inv.get(k))
    if system:
        out.append(f"system={system}")
    if inv.get("cpu_model"):
        out.append(f"cpu={inv['cpu_model']}")
    if isinstance(inv.get("ram_bytes"), int):
        out.append(f"ram={inv['ram_bytes'] / 2**30:.1f} GiB")
    return out


def _disk(d: dict[str, Any]) -> str:
    size = f"{d['bytes'] / 1e9:.0f} GB" if isinstance(d.get("bytes"), int) else "size unknown"
    extra = ", ".join(str(d[k]) for k in ("model", "serial") if d.get(k))
    return f"{d.get('name', '?')} ({size}{', ' + extra if extra else ''})"


def _latest(payloads: list[bytes], metric: str) -> list[str]:
    """`name{labels} = value` for the newest reading of each series of the ticket's metric
    family (e.g. every `disk.*` series) in the recent messages."""
    family = metric.split(".")[0] + "." if metric else ""  # unknown rule: every series
    seen: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for raw in payloads:  # newest first
        try:
            msg = wire.decode(raw)
        except WireFormatError:
            continue
        if not isinstance(msg, wire.Metrics):
            continue
        for s in msg.samples:
            key = (s.name, tuple(sorted(s.labels.items())))
            if s.name.startswith(family) and key not in seen and not (
                    not family and s.name.startswith("agent.")):
                seen[key] = s.value
    out = []
    for (name, labels), value in sorted(seen.items())[:15]:
        lab = "{" + ",".join(f'{k}="{v}"' for k, v in labels) + "}" if labels else ""
        out.append(f"{name}{lab} = {value:g}")
    return out


def checklist(facts: dict[str, Any]) -> list[str]:
    t: dict[str, Any] = facts["ticket"]
    dev: dict[str, Any] = facts.get("device") or {}
    items = [f"Go to site {t['site']}, device {t['device']}: {t['title']} "
             f"(ticket #{t['id']}, {t['severity']})"]
    inv = _dict(dev.get("inventory"))
    known = _identity(inv)
    if known:
        items.append("Identify the equipment: " + ", ".join(known))
    disks = [d for d in inv.get("disks") or [] if isinstance(d, dict)]
    if disks:
        items.append("Disks on record: " + "; ".join(_disk(d) for d in disks[:8])
                     + " — bring a matching replacement if SMART or usage points at one")
    nics = inv.get("nics")
    if isinstance(nics, dict) and nics:
        items.append("Network ports on record: " + ", ".join(
            f"{n} {mac}" for n, mac in list(nics.items())[:6]))
    if dev:
        items.append(f"Device status at dispatch: {dev.get('status', 'unknown')}"
                     f"{' (' + dev['status_cause'] + ')' if dev.get('status_cause') else ''}, "
                     f"last heard {iso(dev.get('last_seen'))}")
        if dev.get("status") == "offline":
            items.append("Check power, network cable/link and the agent service first: the "
                         "device stopped reporting")
    metric = facts.get("metric") or ""
    readings = _latest(facts.get("metrics", []), metric)
    if readings:
        items.append("Last readings: " + "; ".join(readings))
    for d in facts.get("diagnostics", []):
        if d["status"] in ("failed", "timeout", "error", "no_response", "refused"):
            why = d.get("reason") or d["status"]
            items.append(f"Remote {d['check_name']} {d['status']} ({why}): repeat it on site")
    hist = facts.get("history", [])
    if hist:
        rules = Counter(h["rule"] for h in hist)
        again = [f"{r} ×{n}" for r, n in rules.most_common(3)]
        items.append(f"History: {len(hist)} earlier ticket(s) on this device "
                     f"(most frequent: {', '.join(again)}); look for a recurring cause")
    items.append(f"After the repair, confirm the alert {t['rule']} has cleared and note the "
                 "cause and parts used on the ticket")
    return items

"""Values as a person reads them: local times, durations, "—" for nothing, "k=v" for maps.

`--json` keeps the stable machine shapes (fieldwatch/jsonout.py); everything a command prints
without it goes through here, so no Python repr (`None`, `{'a': 1}`, `False`) reaches a terminal.
Times are shown in the local time zone of the machine running the command (like `date`), with
its abbreviation; JSON stays UTC.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

NONE = "—"


def epoch(value: float | str | None) -> float | None:
    """Epoch seconds from epoch seconds or an RFC 3339 string (what jsonout.iso writes)."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float):
        return float(value)
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def when(value: float | str | None) -> str:
    """`2026-12-04 15:57:03 CET`, in the local time zone."""
    ts = epoch(value)
    if ts is None:
        return NONE
    return datetime.fromtimestamp(ts).astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")


def duration(seconds: float | None) -> str:
    """`45 s`, `12 min`, `3 h 20 min`, `2 d 4 h`: two units at most, rounded down."""
    if seconds is None:
        return NONE
    s = abs(seconds)
    if s < 60:
        text = f"{s:.0f} s"
    elif s < 3600:
        text = f"{s // 60:.0f} min"
    elif s < 86400:
        h, m = divmod(int(s) // 60, 60)
        text = f"{h} h" + (f" {m} min" if m else "")
    else:
        d, h = divmod(int(s) // 3600, 24)
        text = f"{d} d" + (f" {h} h" if h else "")
    return "-" + text if seconds < 0 else text


def relative(value: float | str | None, now: float) -> str:
    """`5 min ago` or `in 14 min`."""
    ts = epoch(value)
    if ts is None:
        return NONE
    d = now - ts
    return "just now" if abs(d) < 1 else f"{duration(d)} ago" if d > 0 else f"in {duration(-d)}"


def when_ago(value: float | str | None, now: float) -> str:
    """`2026-12-04 15:57:03 CET (5 min ago)`."""
    return NONE if epoch(value) is None else f"{when(value)} ({relative(value, now)})"


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def percent(ratio: float | None) -> str:
    return NONE if ratio is None else f"{100 * ratio:.1f}%"


def number(v: float | int | None) -> str:
    if v is None:
        return NONE
    return f"{v:g}" if isinstance(v, float) else str(v)


def value(v: Any) -> str:
    """Any JSON-ish value on one line."""
    if v is None or v == "" or v == [] or v == {}:
        return NONE
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int | float):
        return number(v)
    if isinstance(v, Mapping):
        return ", ".join(f"{k}={value(x)}" for k, x in v.items())
    if isinstance(v, list | tuple):
        return ", ".join(value(x) for x in v)
    return str(v)


def size(n: float | None) -> str:
    """Bytes in binary units: `23.5 GiB`."""
    if n is None:
        return NONE
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def inventory(inv: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    """A device's inventory (agent/inventory.py) as labelled lines; unknown keys generically."""
    if not inv:
        return []
    inv = dict(inv)
    out: list[tuple[str, str]] = []
    distro = inv.pop("distro", None)
    system = " ".join(str(x) for x in (
        (distro or {}).get("pretty_name") or inv.get("os"), inv.pop("kernel", None),
        inv.pop("arch", None)) if x)
    inv.pop("os", None)
    if system:
        out.append(("system", system))
    cpu = inv.pop("cpu_model", None)
    cores, threads = inv.pop("cpu_cores", None), inv.pop("cpu_threads", None)
    if cpu or cores:
        out.append(("cpu", f"{cpu or NONE}" + (f", {cores} cores / {threads} threads"
                                                if cores else "")))
    if "ram_bytes" in inv:
        out.append(("ram", size(inv.pop("ram_bytes"))))
    if "boot_time" in inv:
        out.append(("booted", when(inv.pop("boot_time"))))
    disks = inv.pop("disks", None)
    if disks:
        out.append(("disks", ", ".join(
            f"{d.get('name')} {size(d.get('bytes'))}"
            + (f" ({d['model']})" if d.get("model") else "") for d in disks)))
    for k, v in inv.items():
        out.append((k.replace("_", " "), value(v)))
    return out

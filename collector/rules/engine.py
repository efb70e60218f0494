"""Rule evaluation, pure: (rules, state, messages, now) → transitions. No clock, no I/O.

Alert lifecycle per fingerprint (rule + device + labels): inactive → pending (condition true,
`for` not yet met) → firing → resolved. Metric conditions run on the samples' own timestamps,
so data replayed after an outage is judged by when it happened, and a sample older than what a
series already saw cannot rewind it. Absence, offline and staleness (a metric alert whose
series stopped: staleness.py) run on `tick(now)` with the collector's (injected) clock, minus
the time the collector itself was cut off from the broker.

Presence is judged only for confirmed devices: ones that sent metrics or inventory to this
collector. A device known from a status message alone (a retained `offline` someone else left
on the broker) opens no offline or absence ticket.

Hot path: a sample whose value lies in the quiet range of every rule on its metric, on a series
with no alert in flight, costs a dict lookup and two comparisons (most samples are normal).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from fieldwatch.collector.rules import staleness
from fieldwatch.collector.rules.anomaly import Baseline
from fieldwatch.collector.rules.functions import EvalCtx
from fieldwatch.collector.rules.model import Rule, RuleSet, Silence
from fieldwatch.collector.rules.state import AlertState, DeviceState, EngineState, Series
from fieldwatch.collector.rules.windows import Window

from fieldwatch import wire

__all__ = ["AlertState", "Engine", "EngineState", "Transition", "fingerprint"]

INF = math.inf
SNMP_UP = "snmp.up"
SWEEP_EVERY = 600.0  # seconds of collector time between sweeps of stale series
SERIES_TTL = 3600.0  # a series silent this long (and twice its window) is forgotten


def fingerprint(rule: str, site: str, device: str, labels: Mapping[str, str]) -> str:
    """What the fault is: rule, device and identifying labels; never readings or times."""
    key = "\x1f".join([rule, site, device, *(f"{k}={labels[k]}" for k in sorted(labels))])
    return hashlib.blake2b(key.encode(), digest_size=10).hexdigest()


@dataclass(frozen=True, slots=True)
class Transition:
    kind: Literal["firing", "update", "resolved"]
    rule: Rule
    site: str
    device: str
    labels: Mapping[str, str]
    fingerprint: str
    value: float
    ts: float
    count: int = 1
    flapping: bool = False
    silenced: str | None = None
    suppressed_by: str | None = None
    parent: str | None = None
    reason: str = ""
    dtype: str = ""  # the device's type, for the {type} placeholder
    resolution: str = ""  # resolved: why, when not its own condition ("no data ...")


class _Entry:
    """Everything the engine does with one metric name, decided at load."""

    __slots__ = ("rules", "absent", "presence", "special", "lo", "hi", "window")

    def __init__(self, rules: tuple[Rule, ...], absent: tuple[Rule, ...],
                 presence: bool = False) -> None:
        self.rules = rules
        self.absent = absent
        self.presence = presence  # `snmp.up`: the SNMP poller's word on reachability
        self.special = bool(absent) or presence
        self.window = max((r.window for r in rules), default=0.0)
        quiet = [r.quiet for r in rules]
        if rules and all(q is not None for q in quiet):
            self.lo = max(q[0] for q in quiet if q is not None)
            self.hi = min(q[1] for q in quiet if q is not None)
        else:
            self.lo, self.hi = INF, -INF  # never quiet: every sample is evaluated
        if self.lo >= self.hi:
            self.lo, self.hi = INF, -INF


def _labels_key(labels: Mapping[str, str]) -> tuple[Any, ...]:
    if len(labels) <= 1:
        return tuple(labels.items())
    return tuple(sorted(labels.items()))


def _field_text(v: object) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


_DEVICE_DOWN = ("offline", "absent")
UNCONFIRMED = ("unconfirmed device: it never sent metrics or inventory to this collector "
               "(known only from a status message)")


def _same_device(ref: str, dev: DeviceState) -> bool:
    site, _, name = ref.rpartition("/")
    return (site or dev.site, name) == (dev.site, dev.device)


class Engine:
    """Holds the rule index and silences; all other state lives in the EngineState passed in."""

    _generation = 0

    def __init__(self, ruleset: RuleSet, silences: Iterable[Silence] = ()) -> None:
        Engine._generation += 1
        self.gen = Engine._generation
        self.ruleset = ruleset
        self.rules = {r.name: r for r in ruleset.rules}
        self.silences: tuple[Silence, ...] = (*ruleset.silences, *silences)
        metric_rules = ruleset.by_metric()
        self._by_metric = {
            name: _Entry(tuple(r for r in rs if r.kind == "metric"),
                         tuple(r for r in rs if r.kind == "absent"))
            for name, rs in metric_rules.items()}
        # device-level rules first: a metric missing from a device that went down is judged
        # after the device's own outage alert exists, which then explains it
        self._device_rules = tuple(sorted(
            (r for r in ruleset.rules if r.kind in ("offline", "absent")),
            key=lambda r: bool(r.metric)))
        if any(r.kind == "offline" for r in ruleset.rules):
            up = self._by_metric.get(SNMP_UP)
            self._by_metric[SNMP_UP] = _Entry(up.rules if up else (), up.absent if up else (),
                                              presence=True)
        self._event_rules = tuple(r for r in ruleset.rules if r.kind == "event")
        self.ctx = EvalCtx()
        self._empty = Series()  # the shared placeholder for series no rule reads
        self._empty.gen = self.gen
        self._interned: dict[tuple[Any, ...], tuple[Any, ...]] = {}
        self._rule_tuples: dict[tuple[Rule, ...], tuple[Rule, ...]] = {}

    def set_silences(self, runtime: Iterable[Silence]) -> None:
        """Silences from the file plus those added at run time (CLI, API)."""
        self.silences = (*self.ruleset.silences, *runtime)

    # -- input ----------------------------------------------------------------------------------

    def evaluate(self, state: EngineState, messages: Iterable[wire.Message],
                 received_at: float | None = None) -> list[Transition]:
        """Feed messages (metrics, status, events, inventory); `received_at` defaults to each
        message's own time."""
        out: list[Transition] = []
        for msg in messages:
            self.observe(state, msg, received_at, out)
        return out

    def observe(self, st: EngineState, msg: wire.Message, rx: float | None,
                out: list[Transition]) -> None:
        if isinstance(msg, wire.Metrics):
            self._metrics(st, msg, msg.ts if rx is None else rx, out)
        elif isinstance(msg, wire.Status):
            at = msg.ts if msg.ts is not None else rx
            self._status(st, msg, at if at is not None else 0.0, rx, out)
        elif isinstance(msg, wire.Event):
            self._event(st, msg, msg.ts if rx is None else rx, out)
        elif isinstance(msg, wire.Inventory):
            dev = self._device(st, msg.site, msg.device)
            dev.confirmed = True
            self._inventory(dev, msg.facts)

    def _inventory(self, dev: DeviceState, facts: Mapping[str, object]) -> None:
        """Type and parent (the rule file wins), the agent polling it, its interval."""
        dtype = facts.get("type")
        parent = facts.get("parent")
        info = self._info(dev.site, dev.device)
        if not (info and info.type) and isinstance(dtype, str):
            dev.dtype = dtype
            dev.gen = -1
            for ser in dev.series.values():
                ser.gen = -1
        if not (info and info.parent) and isinstance(parent, str):
            dev.parent = parent
        poller = facts.get("polled_by")
        dev.poller = poller if isinstance(poller, str) and poller and not _same_device(
            poller, dev) else None
        every = facts.get("interval")
        ok = isinstance(every, int | float) and not isinstance(every, bool) and 0 < every < INF
        dev.declared = float(every) if ok else 0.0  # type: ignore[arg-type]

    def _info(self, site: str, device: str):  # type: ignore[no-untyped-def]
        devs = self.ruleset.devices
        return devs.get(f"{site}/{device}") or devs.get(device)

    def _device(self, st: EngineState, site: str, device: str) -> DeviceState:
        dev = st.devices.get((site, device))
        if dev is None:
            dev = st.devices[(site, device)] = DeviceState(site, device)
            info = self._info(site, device)
            if info is not None:
                dev.dtype, dev.parent = info.type, info.parent
        return dev

    def _metrics(self, st: EngineState, msg: wire.Metrics, rx: float,
                 out: list[Transition]) -> None:
        dev = self._device(st, msg.site, msg.device)
        if dev.recent.seen(msg.seq, msg.ts):  # a QoS 1 redelivery or a replayed backlog
            st.duplicates += 1  # (same seq and time: a restarted sender reusing seqs is not)
            return
        dev.confirmed = True
        staleness.note_message(dev, msg.ts)
        if rx > dev.last_rx:
            dev.last_rx = rx
        if dev.status == "offline" and msg.ts > dev.status_at \
                and dev.status_cause != "unreachable":  # the poller speaks, not the device
            dev.status, dev.status_cause, dev.status_at = "online", "data", msg.ts
            self._check_device(st, dev, rx, out)
        by_metric = self._by_metric
        hot = dev.hot
        mts = msg.ts
        for s in msg.samples:
            e = by_metric.get(s.name)
            if e is None:
                continue
            v = s.value
            if e.special:
                if e.absent:
                    self._seen_metric(dev, e, s.labels, rx)
                if e.presence:
                    self._snmp_up(st, dev, v, mts if s.ts is None else s.ts, rx, out)
            if e.lo < v < e.hi and s.name not in hot:
                continue
            self._sample(st, dev, e, s, v, mts if s.ts is None else s.ts, out)

    def _snmp_up(self, st: EngineState, dev: DeviceState, v: float, ts: float, rx: float,
                 out: list[Transition]) -> None:
        """An SNMP device is down when its poller says it does not answer (`snmp.up` 0)."""
        if v == 0 and dev.status != "offline" and ts >= dev.status_at:
            dev.status, dev.status_cause, dev.status_at = "offline", "unreachable", ts
            self._check_device(st, dev, rx, out)
        elif v != 0 and dev.status == "offline" and dev.status_cause == "unreachable" \
                and ts > dev.status_at:
            dev.status, dev.status_cause, dev.status_at = "online", "reachable", ts
            self._check_device(st, dev, rx, out)

    def _seen_metric(self, dev: DeviceState, e: _Entry, labels: Mapping[str, str],
                     rx: float) -> None:
        for r in e.absent:
            sel = r.selector
            if sel.matches_device(dev.site, dev.device, dev.dtype) and sel.matches_labels(labels):
                dev.metric_rx[r.name] = rx

    def _bind(self, dev: DeviceState, e: _Entry, key: tuple[Any, ...],
              labels: Mapping[str, str], ser: Series | None) -> Series:
        """The rules of this engine that read this series, and a window if they need one.
        A series no rule reads shares one empty placeholder (no memory per series)."""
        rules = tuple(r for r in e.rules
                      if r.selector.matches_device(dev.site, dev.device, dev.dtype)
                      and r.selector.matches_labels(labels))
        if not rules and (ser is None or ser is self._empty or not ser.alerts):
            dev.series[key] = self._empty
            return self._empty
        if ser is None or ser is self._empty:
            key = self._interned.setdefault(key, key)
            ser = dev.series[key] = Series()
        ser.gen = self.gen
        ser.rules = self._rule_tuples.setdefault(rules, rules)
        want = max((r.window for r in rules), default=0.0)
        if want == 0:
            ser.window = None
        elif ser.window is None or ser.window.span != want:
            ser.window = Window(want)
        return ser

    def _sample(self, st: EngineState, dev: DeviceState, e: _Entry, s: wire.Sample, v: float,
                ts: float, out: list[Transition]) -> None:
        labels = s.labels
        key = (s.name, _labels_key(labels))
        ser = dev.series.get(key)
        if ser is None or ser.gen != self.gen:
            ser = self._bind(dev, e, key, labels, ser)
        rules = ser.rules
        if not rules:
            return
        prev = ser.last_ts
        if ts <= prev:
            return  # older than what this series already saw: late data cannot rewind it
        ser.last_ts = ts
        rx = dev.last_rx
        win = ser.window
        if win is not None:
            win.add(ts, v)
        ctx = self.ctx
        ctx.value = v
        ctx.ts = ts
        ctx.window = win
        alerts = ser.alerts
        for rule in rules:
            a = alerts.get(rule.name) if alerts else None
            if a is None and rule.quiet_lo < v < rule.quiet_hi:
                continue  # this rule is surely false here and has nothing in flight
            spec = rule.anomaly
            base = None
            if spec is not None:
                if ser.anomaly is None:
                    ser.anomaly = {}
                base = ser.anomaly.get(rule.name)
                if base is None:
                    base = ser.anomaly[rule.name] = Baseline(spec.slots if spec.season else 1)
                ctx.zscore, ctx.baseline, ctx.deviation = base.judge(spec, ts, v)
            if a is None:
                if rule.when(ctx):
                    a = self._new_alert(st, rule, dev, labels, ts, v, ser)
                    a.last_rx = rx
                    if prev > -INF and not e.lo < e.hi:  # no sample can have skipped this method
                        staleness.note_gap(a, ts - prev)  # so the gap to the last is exact
                    alerts = ser.alerts
                    if rule.for_seconds <= 0:
                        self._fire(st, a, rule, ts, out)
            else:
                a.last_rx = rx
                a.stale = 0.0
                gaps = a.gaps  # in flight: every sample of the series comes through here
                if gaps is None:
                    if prev > -INF:
                        a.gaps = [ts - prev]
                else:
                    gaps.append(ts - prev)
                    if len(gaps) > staleness.KEEP_SERIES:
                        del gaps[0]
                self._advance(st, a, rule, ctx, ts, v, out)
                alerts = ser.alerts
            if base is not None and spec is not None:
                base.learn(spec, ts, v)

    def _new_alert(self, st: EngineState, rule: Rule, dev: DeviceState,
                   labels: Mapping[str, str], ts: float, v: float,
                   ser: Series | None) -> AlertState:
        labels = dict(labels)
        fp = fingerprint(rule.name, dev.site, dev.device, labels)
        a = AlertState("pending", ts, ts, v, rule.name, dev.site, dev.device, labels, fp,
                       home=ser, dev=dev)
        st.alerts[fp] = a
        if ser is not None:
            if ser.alerts is None:
                ser.alerts = {}
            ser.alerts[rule.name] = a
            dev.hot[rule.metric] = dev.hot.get(rule.metric, 0) + 1
        return a

    def _drop(self, st: EngineState, a: AlertState) -> None:
        st.alerts.pop(a.fingerprint, None)
        st.muted.discard(a.fingerprint)
        st.events.discard(a.fingerprint)
        ser = a.home
        if ser is not None and ser.alerts is not None and ser.alerts.pop(a.rule, None):
            if not ser.alerts:
                ser.alerts = None
            rule = self.rules.get(a.rule)
            metric = rule.metric if rule else ""
            hot = a.dev.hot
            n = hot.get(metric, 0) - 1
            if n > 0:
                hot[metric] = n
            else:
                hot.pop(metric, None)

    drop = _drop  # for staleness.py

    def _advance(self, st: EngineState, a: AlertState, rule: Rule, ctx: EvalCtx, ts: float,
                 v: float, out: list[Transition]) -> None:
        a.last_ts, a.value = ts, v
        if a.state == "pending":
            if not rule.when(ctx):
                self._drop(st, a)
            elif ts - a.since >= rule.for_seconds:
                self._fire(st, a, rule, ts, out)
            return
        cleared = rule.clear(ctx) if rule.clear is not None else not rule.when(ctx)
        if cleared:
            self._clearing(st, a, rule, ts, out)
        else:
            self._holding(st, a, rule, ts, out)

    # -- the shared lifecycle -------------------------------------------------------------------

    def _changes(self, st: EngineState, a: AlertState, rule: Rule, ts: float) -> int:
        """Record a state change for flapping detection; returns changes within the window."""
        spec = rule.flapping
        if spec is None:
            return 0
        times = st.flaps.setdefault(a.fingerprint, [])
        times.append(ts)
        horizon = ts - spec.window
        while times and times[0] < horizon:
            times.pop(0)
        return len(times)

    def _fire(self, st: EngineState, a: AlertState, rule: Rule, ts: float,
              out: list[Transition]) -> None:
        a.state = "firing"
        a.fired_at = a.last_update = ts
        a.unsent = 0
        a.clearing_since = None
        spec = rule.flapping
        if spec is not None and self._changes(st, a, rule, ts) > spec.changes:
            a.flapping = True
        a.silenced = self._silence(a, rule, ts)
        a.suppressed_by, a.parent = self._parent_down(st, a, rule)
        if a.silenced or a.suppressed_by:
            st.muted.add(a.fingerprint)
        if rule.kind == "event":
            st.events.add(a.fingerprint)
        out.append(self._t("firing", a, rule, ts))

    def _clearing(self, st: EngineState, a: AlertState, rule: Rule, ts: float,
                  out: list[Transition]) -> None:
        """The condition is false (or `clear` true) on a firing alert."""
        if a.clearing_since is None:
            a.clearing_since = ts
            spec = rule.flapping
            if spec is not None:
                n = self._changes(st, a, rule, ts)
                if not a.flapping and n > spec.changes:
                    a.flapping = True  # hold it open: one ticket marked flapping
                    out.append(self._t("update", a, rule, ts))
        hold = rule.keep_firing_for
        if a.flapping and rule.flapping is not None:
            hold = max(hold, rule.flapping.window)
        if ts - a.clearing_since >= hold:
            out.append(self._t("resolved", a, rule, ts))
            self._drop(st, a)

    def _holding(self, st: EngineState, a: AlertState, rule: Rule, ts: float,
                 out: list[Transition]) -> None:
        """The condition still holds (or holds again) on a firing alert."""
        if a.clearing_since is not None:
            a.clearing_since = None
            if a.flapping:
                self._changes(st, a, rule, ts)
        a.unsent += 1
        if ts - a.last_update >= rule.update_interval:
            out.append(self._t("update", a, rule, ts, a.unsent))
            a.unsent = 0
            a.last_update = ts

    def _t(self, kind: Literal["firing", "update", "resolved"], a: AlertState, rule: Rule,
           ts: float, count: int = 1) -> Transition:
        return Transition(kind, rule, a.site, a.device, a.labels, a.fingerprint, a.value, ts,
                          count, a.flapping, a.silenced, a.suppressed_by, a.parent, a.reason,
                          a.dev.dtype if a.dev is not None else "",
                          a.resolution if kind == "resolved" else "")

    transition = _t  # for staleness.py

    def _silence(self, a: AlertState, rule: Rule, ts: float) -> str | None:
        if not self.silences:
            return None
        dev = a.dev
        fields = {"rule": rule.name, "device": a.device, "site": a.site,
                  "severity": rule.severity, "type": dev.dtype if dev else ""}
        for s in self.silences:
            if s.active(ts) and s.matches(fields, a.labels):
                return s.id
        return None

    def outage(self, st: EngineState, dev: DeviceState, metric: str = "") -> str | None:
        """The fingerprint of an offline or absence alert of `dev` (pending or firing) that
        explains why nothing comes from it — or, given `metric`, why no `metric` comes."""
        for name, fp in dev.fps.items():
            if fp not in st.alerts:
                continue
            r = self.rules.get(name)
            if r is not None and r.kind in _DEVICE_DOWN and (not r.metric or r.metric == metric):
                return fp
        return None

    def _parent_down(self, st: EngineState, a: AlertState,
                     rule: Rule) -> tuple[str | None, str | None]:
        """(fingerprint of the outage alert, parent) when an absence/offline alert is explained
        by an outage: for a missing metric, its own device's; else its parent's. The parent is
        the one written (`parent:`), else the agent that polls the device (`polled_by`)."""
        dev = a.dev
        if rule.kind not in _DEVICE_DOWN or dev is None:
            return None, None
        if rule.metric:
            own = self.outage(st, dev)
            if own is not None:
                return own, None
        ref = dev.parent or dev.poller
        if not ref:
            return None, None
        site, _, name = ref.rpartition("/")
        parent = st.devices.get((site or dev.site, name))
        if parent is None:
            return None, None
        fp = self.outage(st, parent)
        if fp is not None:
            return fp, ref
        if parent.status == "offline" and parent.confirmed:
            return "status", ref
        return None, None

    # -- status, events and ticks ---------------------------------------------------------------

    def _status(self, st: EngineState, msg: wire.Status, at: float, rx: float | None,
                out: list[Transition]) -> None:
        dev = self._device(st, msg.site, msg.device)
        if at < dev.status_at:
            return  # an older status than the one we hold
        dev.status, dev.status_cause, dev.status_at = msg.state, msg.cause, at
        now = at if rx is None else rx
        if msg.state == "online" and now > dev.last_rx:
            dev.last_rx = now
        self._check_device(st, dev, now, out)

    def _event(self, st: EngineState, ev: wire.Event, rx: float,
               out: list[Transition]) -> None:
        dev = self._device(st, ev.site, ev.device)
        if ev.seq is not None and dev.recent_ev.seen(ev.seq, ev.ts):
            st.duplicates += 1
            return
        if rx > dev.last_rx:
            dev.last_rx = rx
        for rule in self._event_rules:
            spec = rule.event
            assert spec is not None
            if not rule.selector.matches_device(dev.site, dev.device, dev.dtype):
                continue
            opens = spec.type(ev.type)
            clears = spec.clear_type is not None and spec.clear_type(ev.type)
            if not (opens or clears):
                continue
            fields = {k: _field_text(v) for k, v in ev.fields.items()}
            labels = {k: fields.get(k, "") for k in spec.labels_from}
            fp = fingerprint(rule.name, dev.site, dev.device, labels)
            a = st.alerts.get(fp)
            if opens and all(m(fields.get(k, "")) for k, m in spec.fields.items()):
                if a is None:
                    a = self._new_alert(st, rule, dev, labels, ev.ts, 1.0, None)
                    a.reason, a.last_rx = ev.type, rx
                    self._fire(st, a, rule, ev.ts, out)
                elif ev.ts >= a.last_ts:
                    a.last_ts, a.last_rx = ev.ts, rx
                    self._holding(st, a, rule, ev.ts, out)
            elif clears and a is not None and ev.ts >= a.last_ts:
                a.last_ts = ev.ts
                out.append(self._t("resolved", a, rule, ev.ts))
                self._drop(st, a)

    def tick(self, st: EngineState, now: float, connected: bool | None = None) -> list[Transition]:
        """Time-driven checks at collector time `now`: absence and offline rules, silences
        and parents that stopped muting an alert, event alerts past `resolve_after`.
        `connected` is whether the collector hears the broker (None: unchanged)."""
        if connected is not None:
            st.set_link(now, connected)
        out: list[Transition] = []
        if self._device_rules:
            for dev in st.devices.values():
                self._check_device(st, dev, now, out)
        staleness.sweep(self, st, now, out)
        for fp in list(st.muted):
            a = st.alerts.get(fp)
            rule = self.rules.get(a.rule) if a is not None else None
            if a is None or rule is None or a.state != "firing":
                st.muted.discard(fp)
                continue
            silenced = self._silence(a, rule, now)
            suppressed, parent = self._parent_down(st, a, rule)
            if not silenced and not suppressed:  # nothing holds it back now: open its ticket
                st.muted.discard(fp)
                a.silenced = a.suppressed_by = a.parent = None
                out.append(self._t("firing", a, rule, now))
        if now - st.last_sweep >= SWEEP_EVERY:
            self._sweep(st, now)
        for fp in list(st.events):
            a = st.alerts.get(fp)
            rule = self.rules.get(a.rule) if a is not None else None
            if a is None or rule is None or rule.event is None:
                st.events.discard(fp)
                continue
            after = rule.event.resolve_after
            if after > 0 and now - a.last_rx >= after:
                out.append(self._t("resolved", a, rule, a.last_ts + after))
                self._drop(st, a)
        return out

    def _sweep(self, st: EngineState, now: float) -> None:
        """Forget series not heard from for a long time (a NIC removed, a relabelled disk)
        that hold no alert, so churn cannot grow memory without bound."""
        st.last_sweep = now
        for dev in st.devices.values():
            stale = [k for k, ser in dev.series.items()
                     if not ser.alerts and ser.last_ts < now - max(
                         SERIES_TTL, 2 * (ser.window.span if ser.window else 0.0))]
            for k in stale:
                del dev.series[k]
        empty = self._empty  # the shared keys of the series still held, not of all ever seen
        self._interned = {k: k for dev in st.devices.values()
                          for k, ser in dev.series.items() if ser is not empty}

    def _check_device(self, st: EngineState, dev: DeviceState, now: float,
                      out: list[Transition]) -> None:
        if dev.gen != self.gen:
            dev.gen = self.gen
            dev.drules = tuple(r for r in self._device_rules
                               if r.selector.matches_device(dev.site, dev.device, dev.dtype))
        if not dev.confirmed:
            self._unconfirmed(st, dev, now, out)
            return
        for rule in dev.drules:
            down, since, reason = self._down(st, dev, rule, now)
            fp = dev.fps.get(rule.name)
            if fp is None:
                fp = dev.fps[rule.name] = fingerprint(rule.name, dev.site, dev.device, {})
            a = st.alerts.get(fp)
            if down:
                if a is None:
                    a = self._new_alert(st, rule, dev, {}, since, 0.0, None)
                a.reason = reason
                a.value = max(0.0, now - since)  # seconds down (offline) or past the limit
                if a.state == "pending":
                    wait = (rule.for_seconds if rule.kind == "offline" else 0.0) + (
                        rule.hold if dev.parent or dev.poller else 0.0)
                    if now - a.since >= wait and not self._device_first(st, dev, rule, now):
                        a.last_ts = now
                        self._fire(st, a, rule, now, out)
                else:
                    a.last_ts = now
                    self._holding(st, a, rule, now, out)
            elif a is not None:
                if a.state == "pending":
                    self._drop(st, a)
                else:
                    a.last_ts = now
                    self._clearing(st, a, rule, now, out)

    def _device_first(self, st: EngineState, dev: DeviceState, rule: Rule, now: float) -> bool:
        """A metric missing because its whole device went quiet waits until the device's own
        absence rules have judged the silence: their one ticket then explains it."""
        if not rule.metric or dev.last_rx > dev.metric_rx.get(rule.name, -INF):
            return False
        if self.outage(st, dev) is not None:
            return False
        return st.silent_for(dev.last_rx, now) <= staleness.horizon(dev)

    def _unconfirmed(self, st: EngineState, dev: DeviceState, now: float,
                     out: list[Transition]) -> None:
        """No presence judged; an alert restored from a ticket opened for such a device before
        this rule existed is resolved, saying why."""
        for rule in dev.drules:
            fp = dev.fps.get(rule.name)
            a = st.alerts.get(fp) if fp is not None else None
            if a is None:
                continue
            if a.state == "firing":
                a.resolution = UNCONFIRMED
                out.append(self._t("resolved", a, rule, now))
            self._drop(st, a)

    def _down(self, st: EngineState, dev: DeviceState, rule: Rule,
              now: float) -> tuple[bool, float, str]:
        if rule.kind == "offline":
            if dev.status == "offline":
                cause = dev.status_cause
                reason = ("device down: connection lost (Last Will)" if cause == "lost" else
                          "agent stopped cleanly" if cause == "shutdown" else
                          "device down: not answering SNMP" if cause == "unreachable" else
                          f"offline ({cause or 'no cause given'})")
                return True, dev.status_at, reason
            limit = rule.no_data_for
            if limit > 0 and dev.last_rx > -INF:
                gap = st.silent_for(dev.last_rx, now)
                if gap > limit:
                    return True, now - (gap - limit), f"no data for {gap:.0f}s (heartbeat gap)"
            return False, 0.0, ""
        last = dev.metric_rx.get(rule.name) if rule.metric else dev.last_rx
        if last is None or last == -INF:
            return False, 0.0, ""
        gap = st.silent_for(last, now)
        if gap > rule.for_seconds:
            what = f"no {rule.metric}" if rule.metric else "no data"
            return True, now - (gap - rule.for_seconds), f"{what} for {gap:.0f}s"
        return False, 0.0, ""

    def seed_device(self, st: EngineState, site: str, device: str, now: float,
                    status: str | None = None, cause: str = "",
                    status_at: float | None = None, confirmed: bool = True,
                    inventory: Mapping[str, object] | None = None) -> None:
        """A device known from the store when the collector starts: its silence is counted
        from `now` (the collector could not hear it before), its last status is kept, and so
        are whether it is confirmed and what its stored inventory says."""
        dev = self._device(st, site, device)
        dev.last_rx = max(dev.last_rx, now)
        dev.confirmed = dev.confirmed or confirmed
        if inventory:
            self._inventory(dev, inventory)
        if status in ("online", "offline") and dev.status is None:
            dev.status, dev.status_cause = status, cause
            dev.status_at = now if status_at is None else status_at

    def restore(self, st: EngineState, rule_name: str, site: str, device: str,
                labels: Mapping[str, str], fired_at: float, last_ts: float,
                value: float) -> bool:
        """An alert whose ticket is still open when the collector starts comes back firing,
        so a clear after the restart resolves that ticket and a repeat updates it. Returns
        False when the rule is gone or no longer selects this series."""
        rule = self.rules.get(rule_name)
        if rule is None:
            return False
        labels = dict(labels)
        dev = self._device(st, site, device)
        if fingerprint(rule.name, site, device, labels) in st.alerts:
            return False
        if rule.kind == "metric":
            entry = self._by_metric.get(rule.metric)
            if entry is None:
                return False
            key = (rule.metric, _labels_key(labels))
            ser = self._bind(dev, entry, key, labels, dev.series.get(key))
            if rule not in ser.rules:
                return False
            a = self._new_alert(st, rule, dev, labels, fired_at, value, ser)
        else:
            a = self._new_alert(st, rule, dev, labels, fired_at, value, None)
            if rule.kind == "event":
                st.events.add(a.fingerprint)
                a.last_rx = last_ts
            elif not labels:
                dev.fps[rule.name] = a.fingerprint
        a.state = "firing"
        a.fired_at = a.last_update = fired_at
        a.last_ts = last_ts
        if rule.kind == "metric":  # its silence counts from the start, like its device's
            a.last_rx = dev.last_rx if dev.last_rx > -INF else last_ts
        return True

    # -- reload ---------------------------------------------------------------------------------

    def adopt(self, st: EngineState, old: Engine | None) -> int:
        """Carry state over from the engine this one replaces: alerts of rules that still exist
        are kept (pending ones restart when the rule changed), others are dropped. Returns the
        number dropped."""
        for dev in st.devices.values():  # types and parents from the new files win
            info = self._info(dev.site, dev.device)
            if info is not None:
                dev.dtype, dev.parent = info.type, info.parent
        dropped = 0
        for a in list(st.alerts.values()):
            a.stale = 0.0  # the rule's `stale_after` may have changed
            rule = self.rules.get(a.rule)
            before = old.rules.get(a.rule) if old is not None else None
            changed = before is None or rule is None or before.signature != rule.signature
            if rule is None or (changed and a.state == "pending") or (
                    before is not None and rule.kind != before.kind):
                if old is not None:
                    old._drop(st, a)
                else:
                    self._drop(st, a)
                dropped += 1
        return dropped

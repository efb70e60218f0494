"""Sending signed diagnostic requests and taking their results, for the collector and the CLI.

The collector runs one Dispatcher thread: results from the MQTT thread and ticket openings
from the pipeline worker are queued to it, so neither waits on a database write here; it also
sweeps requests that got no answer in time.
"""

from __future__ import annotations

import logging
import queue
import threading
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fieldwatch.agent.diag.config import CHANGING_BUILTINS
from fieldwatch.collector.diag.config import CollectorDiagConfig
from fieldwatch.collector.diag.onsite import checklist
from fieldwatch.collector.diag.store import FAILED, DiagStore
from fieldwatch.collector.rules.model import RuleSet
from fieldwatch.collector.telemetry.stats import Stats

from fieldwatch import signing, wire
from fieldwatch.clock import Clock
from fieldwatch.errors import DiagnosticRefused, WireFormatError

log = logging.getLogger(__name__)

Publish = Callable[[str, bytes], object]  # (topic, payload)
RES_TOPIC = wire.topic("+", "+", "diag/res")


# The alert's own labels say which instance a check should look at: the failing disk, the
# stopped service. Only these; the agent still validates them against its own config.
LABEL_ARGS = {"smart_status": {"device": "disk"}, "service_status": {"service": "service"}}


def args_from_labels(check: str, labels: dict[str, str] | None) -> dict[str, str]:
    want = LABEL_ARGS.get(check, {})
    return {arg: labels[label] for arg, label in want.items() if labels and label in labels}


class Dispatcher:
    def __init__(self, store: DiagStore, key: Ed25519PrivateKey, publish: Publish,
                 clock: Clock, cfg: CollectorDiagConfig, stats: Stats | None = None,
                 ruleset: Callable[[], RuleSet] | None = None) -> None:
        self.store, self.key, self.publish = store, key, publish
        self.clock, self.cfg, self.stats = clock, cfg, stats or Stats()
        self.ruleset = ruleset
        self._queue: queue.Queue[Callable[[], None]] = queue.Queue(maxsize=10_000)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fieldwatch-diag", daemon=True)
        self._logged: dict[str, float] = {}  # reason → when a rejection was last logged

    # -- sending ------------------------------------------------------------------------------

    def send(self, site: str, device: str, check: str, args: dict[str, Any] | None = None, *,
             ticket: int | None = None, requested_by: str = "system",
             auto: bool = False) -> wire.DiagRequest:
        """Sign and publish one request (with the ticket's approval of `check`, if any)."""
        now = self.clock.now()
        rid = uuid.uuid4().hex
        taken = None if auto or ticket is None else self.store.take_approval(
            ticket, check, rid, now)
        req = signing.sign(wire.DiagRequest(
            device=device, site=site, id=rid, check=check, issued=now,
            expires=now + self.cfg.validity, nonce=uuid.uuid4().hex, args=dict(args or {}),
            ticket=ticket, auto=auto, approval=None if taken is None else taken[1],
            requested_by=requested_by), self.key)
        self.store.sent(req, now + self.cfg.timeout, None if taken is None else taken[0])
        self.publish(wire.topic(site, device, "diag/req"), wire.encode_diag(req))
        self.stats.inc("diag_requests_total")
        return req

    def run_for_tickets(self, ticket_ids: Iterable[int]) -> None:
        """A rule opened these tickets: run its read-only diagnostics on the device."""
        rules = self.ruleset() if self.ruleset else RuleSet()
        for tid in ticket_ids:
            t = self.store.ticket(tid)
            rule = None if t is None else rules.get(t["rule"])
            if t is None or rule is None:
                continue
            for name in rule.diagnostics:
                if name in CHANGING_BUILTINS:
                    self.store.add_event(tid, self.clock.now(), "system", "diag_skipped",
                                         f"{name} changes the device: it runs only after an "
                                         "approval on this ticket")
                    continue
                self.send(t["site"], t["device"], name, args_from_labels(name, t["labels"]),
                          ticket=tid, requested_by=f"rule:{rule.name}", auto=True)

    # -- results ------------------------------------------------------------------------------

    def take_result(self, topic: str, payload: bytes) -> dict[str, Any] | None:
        """Decode and record one result; returns the request row it completed, if any."""
        try:
            site, device, kind = wire.parse_topic(topic)
            res = wire.decode_diag_result(payload, now=self.clock.now())
            if (res.site, res.device, kind) != (site, device, "diag/res"):
                raise WireFormatError("topic_mismatch", f"{res.site}/{res.device} on {topic}")
        except WireFormatError as exc:
            self._rejected(exc.reason, topic, exc)
            return None
        try:
            row = self.store.complete(res, self.clock.now())
        except DiagnosticRefused as exc:  # another device answering a request it was not sent
            self._rejected(exc.reason, topic, exc)
            return None
        if row is None:
            return None
        self.stats.inc("diag_results_total", res.status)
        if row["unsolicited"]:
            self.stats.inc("diag_unsolicited_total")
            log.warning("%s/%s refused or answered a request this collector did not send "
                        "(%s: %s %s)", site, device, res.check, res.status, res.reason)
        elif (self.cfg.onsite_on_failure and row["approval_id"] is not None
              and row["ticket_id"] is not None and res.status in FAILED):
            self.mark_onsite(row["ticket_id"], "system",
                             f"remote action {res.check} {res.status}: {res.reason or ''}")
        return row

    def _rejected(self, reason: str, topic: str, exc: Exception) -> None:
        """Counted always, logged at most once per reason every 10 s: a device sending junk
        must not flood the log."""
        self.stats.inc("diag_rejected_total", reason)
        now = self.clock.now()
        if now - self._logged.get(reason, float("-inf")) >= 10.0:
            self._logged[reason] = now
            log.warning("rejected a diagnostic result on %s (counted in "
                        "diag_rejected_total{reason=%s}): %s", topic, reason, str(exc)[:300])

    def sweep(self) -> None:
        for row in self.store.overdue(self.clock.now()):
            self.stats.inc("diag_results_total", "no_response")
            if self.cfg.onsite_on_failure and row["ticket_id"] is not None:
                self.mark_onsite(row["ticket_id"], "system",
                                 f"{row['device']} did not answer {row['check_name']}")

    def mark_onsite(self, ticket_id: int, by: str, reason: str) -> bool:
        facts = self.store.visit_facts(ticket_id)
        rule = self.ruleset().get(facts["ticket"]["rule"]) if self.ruleset else None
        facts["metric"] = rule.metric if rule else ""
        return self.store.mark_onsite(ticket_id, by, reason, checklist(facts), self.clock.now())

    # -- the collector's thread ---------------------------------------------------------------

    def on_message(self, client: object, userdata: object, message: Any) -> None:
        """paho callback for diag/res: queue only."""
        topic, payload = message.topic, bytes(message.payload)
        self._submit(lambda: self.take_result(topic, payload))

    def on_tickets_opened(self, ticket_ids: list[int]) -> None:
        if self.cfg.auto_run:
            ids = list(ticket_ids)
            self._submit(lambda: self.run_for_tickets(ids))

    def _submit(self, job: Callable[[], object]) -> None:
        try:
            self._queue.put(job, timeout=5)  # type: ignore[arg-type]
        except queue.Full:
            self.stats.inc("diag_dropped_total")
            log.error("diagnostics queue full; a job was dropped")

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        while not (self._stop.is_set() and self._queue.empty()):
            try:
                job = self._queue.get(timeout=0.5)
            except queue.Empty:
                job = None
            try:
                if job is not None:
                    job()
                self.sweep()
            except Exception:  # noqa: BLE001 - the database may be down; keep serving
                self.stats.inc("diag_errors_total")
                log.exception("diagnostics job failed")


def diag_dispatcher(cfg: Any, engine: Any, clock: Clock, stats: Stats,
                    ruleset: Callable[[], RuleSet], publish: Publish) -> Dispatcher | None:
    """The collector's dispatcher, or None when no signing key is configured."""
    from fieldwatch.collector.config import CollectorConfig

    assert isinstance(cfg, CollectorConfig)
    if cfg.diag.private_key is None:
        log.info("diag: no private_key configured; remote diagnostics are off")
        return None
    key = signing.load_private(cfg.diag.private_key)
    return Dispatcher(DiagStore(engine), key, publish, clock, cfg.diag, stats, ruleset)

"""An Apprise channel as an outbox desk: `deliver(change) -> Receipt`, so a notification is
written in the ticket change's transaction, retried while the service is down, and sent once.

Per change the channel works out its messages (routing.plan: which people, which language),
renders each, and sends it through Apprise. Every message sent — or refused for good — is
written on the ticket's timeline (`notification_sent` / `notification_failed`, with the
message's key). A change whose messages went only partly out is retried as *unclear*: the
retry reads the timeline and sends only what is not written there yet.

Apprise answers True or False; why it failed is in the log lines it captured for the call.
The boundary (`apprise_send`) reads the HTTP status from them (`error=NNN`, the form every
Apprise HTTP plugin logs): 4xx other than 408/425/429 is a permanent refusal (a bad token, a
chat that does not exist) and is not retried; anything else — 5xx, 429, a refused connection,
a timeout — is retried with the outbox's backoff.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote

import sqlalchemy as sa
from fieldwatch.collector.desks.model import Change, Receipt
from fieldwatch.collector.notify import templates
from fieldwatch.collector.notify.config import ChannelSpec, NotificationsConfig
from fieldwatch.collector.notify.routing import Send, oncall_of, plan
from fieldwatch.collector.telemetry.stats import Stats
from fieldwatch.collector.tickets.routing import TeamsSpec

from fieldwatch.clock import Clock
from fieldwatch.errors import DeskUnavailable

log = logging.getLogger(__name__)

SENT, FAILED = "notification_sent", "notification_failed"
_STATUS = re.compile(r"\berror=(\d{3})\b")
_RETRYABLE_4XX = frozenset({408, 425, 429})


@dataclass(frozen=True)
class Attempt:
    """What one Apprise send came to."""

    ok: bool
    retry: bool = False  # failed, and worth trying again later
    detail: str = ""


def classify(ok: bool, messages: Iterable[str]) -> Attempt:
    """Apprise's verdict and the log lines of the call → sent / retry / refused for good."""
    if ok:
        return Attempt(True, detail="sent")
    lines = [m for m in messages if m]
    detail = (lines[-1] if lines else "Apprise reported a failure")[:300]
    codes = [int(c) for m in lines for c in _STATUS.findall(m)]
    if codes and all(400 <= c < 500 and c not in _RETRYABLE_4XX for c in codes):
        return Attempt(False, retry=False, detail=detail)
    return Attempt(False, retry=True, detail=detail)


def apprise_send(url: str, title: str, body: str) -> Attempt:
    """Send one message through Apprise (the only function here that does I/O)."""
    import apprise  # imported on first use: the collector without notifications never loads it

    obj = apprise.Apprise()
    if not obj.add(url):
        return Attempt(False, detail="Apprise cannot use this channel's URL (check the scheme "
                                     "and the address put in for {to})")
    result = obj.notify(body=body, title=title, body_format=apprise.NotifyFormat.TEXT)
    return classify(bool(result), (e.message for e in result.logs()))


Sender = Callable[[str, str, str], Attempt]


class Journal(Protocol):
    """Where sends are written down: the ticket's timeline."""

    def record(self, ticket_id: int, at: float, kind: str, reason: str,
               data: dict[str, Any]) -> None: ...

    def done(self, ticket_id: int) -> set[str]:
        """Keys of the messages of this ticket already sent or refused for good."""
        ...


class StoreJournal:
    """The Journal over the ticket store (timeline events; no outbox rows come of them)."""

    def __init__(self, store: Any) -> None:
        self.store = store

    def record(self, ticket_id: int, at: float, kind: str, reason: str,
               data: dict[str, Any]) -> None:
        self.store.add_event(ticket_id, at, "system", kind, reason, data)

    def done(self, ticket_id: int) -> set[str]:
        return {str(e["data"].get("key")) for e in self.store.timeline(ticket_id)
                if e["kind"] in (SENT, FAILED) and isinstance(e.get("data"), dict)}


def personal_url(url: str, address: str) -> str:
    """The channel URL with one person's address in place of `{to}` (URL-quoted, so an
    address cannot add a path segment or a query parameter of its own)."""
    return url.replace("{to}", quote(address, safe="+@"))


class AppriseChannel:
    def __init__(self, spec: ChannelSpec, url: str, cfg: NotificationsConfig, teams: TeamsSpec,
                 journal: Journal, clock: Clock, stats: Stats | None = None,
                 sender: Sender = apprise_send) -> None:
        self.name, self.spec, self._url = spec.name, spec, url
        self.cfg, self.teams, self.journal = cfg, teams, journal
        self.clock, self.stats, self.sender = clock, stats or Stats(), sender
        self._own = {lang: t.text() for lang, t in spec.templates.items()}

    def __repr__(self) -> str:  # never the URL: it holds the service's token
        return f"AppriseChannel({self.name!r})"

    def message(self, change: Change, send: Send) -> templates.Text:
        lang, text = templates.pick(send.language, self.spec.language or self.cfg.language,
                                    self._own)
        at = float(change.event.get("at") or 0.0)
        vals = templates.values(change, lang, list(send.recipients),
                                oncall_of(self.teams, change.ticket.get("team"), at),
                                send.to, self.name)
        labels = change.ticket.get("labels")
        return templates.render_text(text, vals, labels if isinstance(labels, Mapping) else {})

    def url_for(self, send: Send) -> str | None:
        """This message's URL, or None when the person has no address for this channel."""
        if send.to is None:
            return self._url
        member = self.teams.member(send.to)
        address = member.contacts.get(self.spec.contact or "") if member else None
        return personal_url(self._url, address) if address else None

    def deliver(self, change: Change) -> Receipt:
        sends = plan(self.cfg, self.teams, change, only=self.name)
        if not sends:
            return Receipt(external_id=change.external_id, detail="no route")
        ticket_id = int(change.ticket["id"])
        done = self.journal.done(ticket_id) if change.unclear else set()
        sent, failed, again = 0, 0, []
        for s in sends:
            key = f"{change.key}/{self.name}/{s.target}"
            if key in done:
                continue
            url = self.url_for(s)
            if url is None:
                outcome = Attempt(False, detail=f"{s.to} has no {self.spec.contact} contact")
            else:
                text = self.message(change, s)
                outcome = self.sender(url, text.title, text.body)
            data = {"channel": self.name, "to": s.target, "key": key, "action": change.action,
                    "route": s.route, "language": s.language}
            if outcome.ok:
                sent += 1
                self._record(ticket_id, SENT, f"{self.name} → {s.target}", data)
            elif outcome.retry:
                again.append(f"{s.target}: {outcome.detail}")
            else:
                failed += 1
                log.warning("notification %s to %s refused: %s", self.name, s.target,
                            outcome.detail)
                self._record(ticket_id, FAILED, f"{self.name} → {s.target}: {outcome.detail}",
                             data)
        self.stats.inc("notify_sent_total", self.name, sent)
        self.stats.inc("notify_failed_total", self.name, failed)
        if again:
            # Some are on the timeline already: the retry must look there before sending.
            raise DeskUnavailable(f"{self.name}: {len(again)} not sent: {'; '.join(again)}"[:900],
                                  unclear=sent + failed > 0 or change.unclear)
        return Receipt(external_id=change.external_id,
                       detail=f"{sent} sent, {failed} refused, {len(sends) - sent - failed} "
                              "already done")

    def _record(self, ticket_id: int, kind: str, reason: str, data: dict[str, Any]) -> None:
        try:
            self.journal.record(ticket_id, self.clock.now(), kind, reason[:500], data)
        except sa.exc.SQLAlchemyError as exc:
            # The message went (or was refused); only its record is missing. Retry the change
            # as unclear: what is on the timeline is skipped, this one may go out again.
            raise DeskUnavailable(f"{self.name}: could not write the timeline: "
                                  f"{type(exc).__name__}", unclear=True) from None

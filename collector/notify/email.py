"""Email over SMTP (STARTTLS, AUTH): new tickets to their team, escalation steps to whom the
step names. A desk like the others — `deliver(change) -> Receipt` — so mail waits in the outbox
while the mail server is down.

`message` is pure (change → EmailMessage); `Email.deliver` is the smtplib shell, mapping SMTP
failures at the boundary: connection problems and 4xx replies → DeskUnavailable, 5xx replies →
DeskRejected.

Every header value goes through `header_value`: titles are rendered from device-supplied labels,
and a line break in a header would end it and start another (the email package refuses it with a
ValueError; a looser library would let a device add a `Bcc:`).
"""

from __future__ import annotations

import smtplib
import ssl
import unicodedata
from collections.abc import Mapping, Sequence
from email.message import EmailMessage
from email.utils import formatdate

from fieldwatch.collector.desks.model import Change, Receipt

from fieldwatch.errors import DeskRejected, DeskUnavailable

HEADER_MAX = 900  # characters; RFC 5322 caps a line at 998 and the policy folds longer ones


def header_value(text: str, limit: int = HEADER_MAX) -> str:
    """`text` as one header line: line breaks and other whitespace (U+2028 too) fold to one
    space, control characters and lone surrogates go, and it is cut at `limit`."""
    kept = []
    for ch in text:
        cat = unicodedata.category(ch)
        if ch.isspace() or cat in ("Zl", "Zp"):
            kept.append(" ")
        elif cat not in ("Cc", "Cs"):
            kept.append(ch)
    return " ".join("".join(kept).split())[:limit]


def recipients(change: Change, team_addresses: Mapping[str, Sequence[str]],
               default: Sequence[str],
               person_addresses: Mapping[str, str] | None = None) -> list[str]:
    """Whom an escalation step names (event data `recipients`: people or addresses, people
    looked up in `person_addresses`), else the ticket's team's addresses, else `default`."""
    data = change.event.get("data") or {}
    named = data.get("recipients") or data.get("notify") if isinstance(data, dict) else None
    if isinstance(named, str):
        named = [named]
    people = person_addresses or {}
    found = [str(n) if "@" in str(n) else people.get(str(n), "") for n in named or ()]
    if change.action == "escalate" and any(found):
        return sorted({a for a in found if a})
    team = change.ticket.get("team")
    return list(team_addresses.get(str(team), default) if team else default)


def message(change: Change, sender: str, to: Sequence[str]) -> EmailMessage:
    t = change.ticket
    msg = EmailMessage()
    kind = "Escalation" if change.action == "escalate" else {
        "open": "New ticket"}.get(change.action, f"Ticket {change.action}")
    msg["Subject"] = header_value(f"[{t.get('severity', '')}] {kind}: {change.title}")
    msg["From"] = header_value(sender)
    msg["To"] = ", ".join(header_value(a) for a in to)
    msg["Message-ID"] = header_value(f"<{change.key}@fieldwatch>")  # mail systems drop resends
    msg["X-Fieldwatch-Ticket"] = header_value(change.reference)
    at = change.event.get("at") or t.get("opened_at")
    if at is not None:
        msg["Date"] = formatdate(float(at), usegmt=True)
    text = change.description() if change.action == "open" else (
        change.note() + "\n\n" + change.description())
    msg.set_content(text)
    return msg


class Email:
    def __init__(self, name: str, host: str, port: int, sender: str,
                 team_addresses: Mapping[str, Sequence[str]], default: Sequence[str],
                 person_addresses: Mapping[str, str] | None = None, starttls: bool = True,
                 username: str | None = None,
                 password: str | None = None, tls: ssl.SSLContext | None = None,
                 timeout: float = 10.0) -> None:
        self.name, self.host, self.port, self.sender = name, host, port, sender
        self.team_addresses, self.default = dict(team_addresses), list(default)
        self.person_addresses = dict(person_addresses or {})
        self.starttls, self.username, self._password = starttls, username, password
        self.tls = tls or ssl.create_default_context()
        self.timeout = timeout

    def deliver(self, change: Change) -> Receipt:
        to = recipients(change, self.team_addresses, self.default, self.person_addresses)
        if not to:
            return Receipt(external_id=change.external_id, detail="no recipients")
        msg = message(change, self.sender, to)
        what = f"SMTP {self.host}:{self.port}"
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
                if self.starttls:
                    smtp.starttls(context=self.tls)
                if self.username:
                    smtp.login(self.username, self._password or "")
                refused = smtp.send_message(msg)
        except smtplib.SMTPAuthenticationError as exc:
            raise DeskRejected(f"{what}: authentication failed ({exc.smtp_code})") from None
        except smtplib.SMTPRecipientsRefused as exc:
            raise DeskRejected(f"{what}: recipients refused: {sorted(exc.recipients)}") from None
        except smtplib.SMTPResponseException as exc:
            text = exc.smtp_error.decode(errors="replace")[:300] if isinstance(
                exc.smtp_error, bytes) else str(exc.smtp_error)[:300]
            if 400 <= exc.smtp_code < 500:
                raise DeskUnavailable(f"{what}: {exc.smtp_code} {text}", unclear=True) from None
            raise DeskRejected(f"{what}: {exc.smtp_code} {text}") from None
        except smtplib.SMTPNotSupportedError:
            raise DeskRejected(f"{what}: server offers no STARTTLS or AUTH") from None
        except (TimeoutError, smtplib.SMTPException, ssl.SSLError, OSError) as exc:
            raise DeskUnavailable(f"{what}: {type(exc).__name__}: {exc}") from None
        return Receipt(external_id=change.external_id,
                       detail=f"sent to {len(to) - len(refused)} of {len(to)}")

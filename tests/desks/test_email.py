"""Email notifications against a local SMTP server (aiosmtpd) with STARTTLS and AUTH."""

from __future__ import annotations

import re
import ssl
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from fieldwatch.collector.desks import outbox
from fieldwatch.collector.desks.config import EmailDesk, RetryPolicy
from fieldwatch.collector.notify.email import Email, header_value, message, recipients
from fieldwatch.collector.rules.templates import render
from fieldwatch.collector.store.store import BatchWrite, Store
from fieldwatch.collector.tickets.alerts import TicketChange

from fieldwatch.broker import free_port
from fieldwatch.clock import FakeClock
from fieldwatch.errors import DeskRejected, DeskUnavailable
from tests.desks.kits import change
from tests.tls import self_signed, server_context

TEAMS = {"hardware": ["hw@example.com", "lead@example.com"]}


@dataclass
class Mailbox:
    reply: str = "250 OK"
    received: list[tuple[list[str], Message, bool, Any]] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.reply.startswith("250"):
            self.received.append((list(envelope.rcpt_tos), message_from_bytes(envelope.content),
                                  session.ssl is not None, session.authenticated))
        return self.reply


def authenticator(server: Any, session: Any, envelope: Any, mechanism: str,
                  auth_data: Any) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        b"fieldwatch", b"mail-secret")
    return AuthResult(success=ok, handled=False)  # False: the server answers 535 itself


@pytest.fixture
def smtp(tmp_path: Path) -> Iterator[tuple[Mailbox, int, Path]]:
    cert, key = self_signed(tmp_path)
    box = Mailbox()
    port = free_port()
    ctl = Controller(box, hostname="127.0.0.1", port=port, tls_context=server_context(cert, key),
                     require_starttls=True, auth_required=True, authenticator=authenticator)
    ctl.start()
    yield box, port, cert
    ctl.stop()


def email(port: int, cert: Path, password: str = "mail-secret") -> Email:
    return Email("mail", "127.0.0.1", port, "fieldwatch@example.com", TEAMS,
                 ["desk@example.com"], {"alex": "alex@example.com"}, starttls=True,
                 username="fieldwatch", password=password,
                 tls=ssl.create_default_context(cafile=str(cert)), timeout=5)


def test_new_ticket_goes_to_its_team_over_starttls_with_auth(
        smtp: tuple[Mailbox, int, Path]) -> None:
    box, port, cert = smtp
    receipt = email(port, cert).deliver(change("open", 1))
    assert receipt.detail == "sent to 2 of 2"
    [(rcpts, msg, tls, authed)] = box.received
    assert rcpts == TEAMS["hardware"] and tls and authed
    assert msg["Subject"] == "[P1] New ticket: [fieldwatch-7] Pump pump-01 at 95 C"
    assert msg["Message-ID"] == "<fieldwatch-7-1@fieldwatch>"
    assert msg["X-Fieldwatch-Ticket"] == "fieldwatch-7"
    assert "plant/pump-01" in msg.get_payload()


def test_escalation_goes_to_whom_the_step_names(smtp: tuple[Mailbox, int, Path]) -> None:
    box, port, cert = smtp
    ch = change("escalate", 2)
    ch = type(ch)(**{**ch.__dict__, "event": {**ch.event, "kind": "sla_escalation",
                                              "data": {"notify": "lead",
                                                       "recipients": ["alex", "boss@example.com",
                                                                      "nobody-known"]}}})
    email(port, cert).deliver(ch)
    [(rcpts, msg, _, _)] = box.received
    assert rcpts == ["alex@example.com", "boss@example.com"]
    assert msg["Subject"].startswith("[P1] Escalation:")


def test_wrong_password_is_rejected(smtp: tuple[Mailbox, int, Path]) -> None:
    _, port, cert = smtp
    with pytest.raises(DeskRejected, match="authentication failed"):
        email(port, cert, password="nope").deliver(change("open", 1))


def test_temporary_and_permanent_smtp_failures(smtp: tuple[Mailbox, int, Path]) -> None:
    box, port, cert = smtp
    box.reply = "451 4.3.0 try again later"
    with pytest.raises(DeskUnavailable):
        email(port, cert).deliver(change("open", 1))
    box.reply = "554 5.7.1 rejected"
    with pytest.raises(DeskRejected, match="554"):
        email(port, cert).deliver(change("open", 1))
    assert box.received == []


def test_server_down_is_retryable(tmp_path: Path) -> None:
    cert, _ = self_signed(tmp_path)
    with pytest.raises(DeskUnavailable):
        email(free_port(), cert).deliver(change("open", 1))


def test_untrusted_certificate_is_not_sent_to(smtp: tuple[Mailbox, int, Path],
                                              tmp_path: Path) -> None:
    box, port, _ = smtp
    other, _ = self_signed(tmp_path / "other")
    with pytest.raises(DeskUnavailable, match="SSL"):
        email(port, other).deliver(change("open", 1))
    assert box.received == []


def test_recipients_and_message_are_pure() -> None:
    assert recipients(change("open", 1), TEAMS, ["d@x"]) == TEAMS["hardware"]
    unknown = change("escalate", 1)
    unknown = type(unknown)(**{**unknown.__dict__, "event": {"data": {"recipients": ["zed"]}}})
    assert recipients(unknown, TEAMS, ["d@x"], {"alex": "a@x"}) == TEAMS["hardware"]
    no_team = change("open", 1)
    no_team = type(no_team)(**{**no_team.__dict__, "ticket": {**no_team.ticket, "team": None}})
    assert recipients(no_team, TEAMS, ["d@x"]) == ["d@x"]
    msg = message(change("resolve", 5), "fw@x", ["a@x"])
    assert msg["Subject"].startswith("[P1] Ticket resolve:") and "step 5" in msg.get_content()


# -- a ticket title carrying a line break (issue 19 item 4) -----------------------------------

def _ticket(store: Store, fp: str, title: str) -> None:
    store.write(BatchWrite(changes=[TicketChange(
        kind="fire", fingerprint=fp, rule="disk_full", site="plant", device=f"dev-{fp}",
        labels={}, severity="P1", title=title, description="disk nearly full", team="hardware",
        value=93.0, first_ts=1.0, last_ts=1.0)]), 1.0)


def _settled(store: Store) -> bool:
    return "pending" not in outbox.Queue(store.engine).counts().get("mail", {})


def test_a_line_break_in_a_title_neither_jams_the_outbox_nor_resends_other_mail(
        smtp: tuple[Mailbox, int, Path], store: Store) -> None:
    box, port, cert = smtp
    outbox.register_desks(store.engine, "fw", [EmailDesk(type="email", name="mail",
                                                         host="127.0.0.1")], 0.0)
    # the title comes from a device-supplied label rendered into the rule's template
    mount = "/data\r\nBcc: victim@example.com\n\x07\x1b[31m"
    titles = {"a": "Disk / on dev-a at 93%",
              "b": render("Disk {labels.mount} on {device} at {value:.0f}%",
                          {"device": "dev-b", "value": 93.0}, {"mount": mount}),
              "c": "Disk / on dev-c at 93%", "d": "Disk / on dev-d at 93%"}
    assert "\r\n" in titles["b"]
    for fp, title in titles.items():  # queued together: one round of the worker takes them all
        _ticket(store, fp, title)
    worker = outbox.Worker(store.engine, {"mail": email(port, cert)}, FakeClock(10.0),
                           RetryPolicy(), concurrency=4, poll=0.05)
    worker.start()
    try:  # bounded: before the fix the round never settles and the others are sent again
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not (_settled(store) and len(box.received) >= 4):
            time.sleep(0.05)
    finally:
        worker.stop()
    by_id = Counter(str(m["Message-ID"]) for _, m, _, _ in box.received)
    assert sorted(by_id.values()) == [1, 1, 1, 1], by_id  # every mail exactly once
    [(rcpts, bad, _, _)] = [r for r in box.received if "dev-b" in str(r[1]["Subject"])]
    assert rcpts == TEAMS["hardware"]  # no header smuggled in: no extra recipient
    assert bad["Bcc"] is None
    subject = re.sub(r"\r?\n(?=[ \t])", "", str(bad["Subject"]))  # unfold (RFC 5322 2.2.3)
    assert subject == "[P1] New ticket: [fw-2] Disk /data Bcc: victim@example.com [31m on " \
                      "dev-b at 93%"
    assert outbox.Queue(store.engine).counts() == {"mail": {"delivered": 4}}


@pytest.mark.parametrize(("raw", "clean"), [
    ("Disk /\r\nBcc: x@example.com", "Disk / Bcc: x@example.com"),
    ("a\nb\rc\td", "a b c d"),
    ("nul\x00 esc\x1b[0m bell\x07 del\x7f", "nul esc[0m bell del"),
    ("line\u2028sep\u2029par\x85nel", "line sep par nel"),
    ("  many   spaces  ", "many spaces"),
    ("lone \ud800 surrogate", "lone surrogate"),
    ("Pumpe Ölstand ⚠", "Pumpe Ölstand ⚠"),
])
def test_header_values_are_one_line_without_control_characters(raw: str, clean: str) -> None:
    assert header_value(raw) == clean
    assert len(header_value("x" * 5000)) == 900


def test_message_headers_are_sanitised_whatever_the_change_carries() -> None:
    ch = change("open", 1)
    ch = type(ch)(**{**ch.__dict__, "reference": "fw-7\r\nX-Evil: 1",
                     "ticket": {**ch.ticket, "title": "t\nBcc: a@x", "severity": "P1\r"}})
    msg = message(ch, "fw@x\n", ["a@x\r\nBcc: b@x"])
    assert msg["Subject"] == "[P1 ] New ticket: [fw-7 X-Evil: 1] t Bcc: a@x"
    assert msg["X-Evil"] is None and msg["Bcc"] is None
    assert msg["To"].addresses[0].addr_spec == "a@x" and len(msg["To"].addresses) == 1
    assert msg["From"] == "fw@x"

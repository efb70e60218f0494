"""Apprise channels against local receivers that check each service's documented request
shape: Slack, Microsoft Teams (Workflows), Telegram, DingTalk, WeCom, an SMS gateway
(SMSEagle), email (SMTP with STARTTLS and AUTH), and a generic JSON hook."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterator
from email import message_from_bytes
from email.header import decode_header, make_header
from email.message import Message
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from fieldwatch.collector.notify.apprise_channel import AppriseChannel, apprise_send, classify

from fieldwatch.broker import free_port
from fieldwatch.clock import FakeClock
from fieldwatch.errors import DeskUnavailable
from tests.notify.helpers import ALEX_WEEK, ListJournal, change, notifications, teams
from tests.notify.receivers import Receiver, Req
from tests.tls import self_signed, server_context

SLACK = "slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ/#ops"
TELEGRAM_TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"


def channel(url: str, contact: str | None = None, language: str | None = None,
            templates: str = "", notify: str = "oncall") -> tuple[AppriseChannel, ListJournal]:
    cfg = notifications(f"""
channels:
  - name: ch
    url: "{url}"
    {f"contact: {contact}" if contact else ""}
    {f"language: {language}" if language else ""}
    {templates}
routes:
  - {{match: {{severity: [P1]}}, notify: [{notify}], channels: [ch]}}
""")
    journal = ListJournal()
    return AppriseChannel(cfg.channels[0], url, cfg, teams(), journal, FakeClock()), journal


def deliver(url: str, receiver: Receiver, contact: str | None = None,
            language: str | None = None) -> Req:
    ch, journal = channel(url, contact, language)
    receipt = ch.deliver(change())
    assert receipt.detail.startswith("1 sent"), receipt.detail
    assert journal.kinds() == [("notification_sent", "alex" if contact else "room")]
    (req,) = receiver.take()
    return req


def test_slack_incoming_webhook(endpoints: Receiver) -> None:
    req = deliver(SLACK, endpoints)
    assert (req.method, req.path) == ("POST", "/services/T1JJ3T3L2/A1BRTD4JD/"
                                              "TIiajkdnlazkcOXrIdevi7FQ")
    assert req.headers["content-type"].startswith("application/json")
    body = req.json
    assert body["channel"] == "#ops"
    (att,) = body["attachments"]
    assert att["title"] == "[P1] New ticket: Pump hot"
    assert "plant-north/pump-01" in att["text"] and "on call alex" in att["text"]


def test_microsoft_teams_workflow_over_tls(receiver: Receiver, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Teams Workflows always speak HTTPS: a TLS receiver whose CA requests is told of."""
    cert, key = self_signed(tmp_path)
    tls = Receiver(receiver.answer, tls=server_context(cert, key)).start()
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))
    try:
        req = deliver(f"workflows://127.0.0.1:{tls.port}/abc123WF/sigXYZ_987", tls)
    finally:
        tls.stop()
    assert (req.method, req.path) == ("POST", "/workflows/abc123WF/triggers/manual/paths/invoke")
    assert req.query["sig"] == "sigXYZ_987"
    assert req.query["sp"] == "/triggers/manual/run" and req.query["api-version"]
    body = req.json
    assert body["type"] == "message"
    (att,) = body["attachments"]
    assert att["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = att["content"]
    assert card["type"] == "AdaptiveCard"
    texts = " ".join(b.get("text", "") for b in card["body"])
    assert "[P1] New ticket: Pump hot" in texts and "on call alex" in texts


def test_telegram_bot_to_the_person_on_call(endpoints: Receiver) -> None:
    req = deliver(f"tgram://{TELEGRAM_TOKEN}/{{to}}/", endpoints, contact="telegram")
    assert (req.method, req.path) == ("POST", f"/bot{TELEGRAM_TOKEN}/sendMessage")
    body = req.json
    assert str(body["chat_id"]) == "1001"  # alex's telegram contact
    assert body["parse_mode"] == "HTML"
    assert "[P1] New ticket: Pump hot" in body["text"] and "pump-01" in body["text"]


def test_dingtalk_robot_signed(endpoints: Receiver) -> None:
    req = deliver("dingtalk://SECsecret123@a1b2c3d4e5f6/", endpoints, language="zh")
    assert (req.method, req.path) == ("POST", "/robot/send")
    assert req.query["access_token"] == "a1b2c3d4e5f6"
    # the robot's signature: base64(HMAC-SHA256(secret, "<timestamp>\n<secret>")), URL-encoded
    ts = req.query["timestamp"]
    want = base64.b64encode(hmac.new(b"SECsecret123", f"{ts}\nSECsecret123".encode(),
                                     hashlib.sha256).digest()).decode()
    assert unquote(req.query["sign"]) == want
    body = req.json
    assert body["msgtype"] == "text"
    assert body["text"]["content"].startswith("[P1] 新工单：Pump hot")
    assert "值班 alex" in body["text"]["content"]


def test_wecom_group_robot(endpoints: Receiver) -> None:
    req = deliver("wecombot://BOTKEY-0a1b2c", endpoints, language="zh")
    assert (req.method, req.path, req.query) == ("POST", "/cgi-bin/webhook/send",
                                                 {"key": "BOTKEY-0a1b2c"})
    body = req.json
    assert body["msgtype"] == "text"
    assert "新工单" in body["text"]["content"] and "pump-01" in body["text"]["content"]


def test_sms_gateway_to_the_person_on_call(receiver: Receiver) -> None:
    req = deliver(f"smseagle://tok3n@127.0.0.1:{receiver.port}/{{to}}", receiver,
                  contact="phone")
    assert (req.method, req.path) == ("POST", "/jsonrpc/sms")
    body = req.json
    assert body["method"] == "sms.send_sms"
    p = body["params"]
    assert p["to"] == "+4917000001" and p["access_token"] == "tok3n"
    assert "Pump hot" in p["message"] and p["unicode"] == 1


def test_generic_json_hook(receiver: Receiver) -> None:
    req = deliver(f"json://127.0.0.1:{receiver.port}/fieldwatch", receiver)
    assert (req.method, req.path) == ("POST", "/fieldwatch")
    assert req.json["title"] == "[P1] New ticket: Pump hot"
    assert "Ticket fieldwatch-7" in req.json["message"]


def test_language_follows_the_person(receiver: Receiver) -> None:
    """bo's entry says zh-CN: the Chinese text, though the channel's language is English."""
    ch, journal = channel(f"smseagle://tok3n@127.0.0.1:{receiver.port}/{{to}}", "phone", "en")
    ch.deliver(change(at=ALEX_WEEK + 7 * 86400))  # bo's week
    (req,) = receiver.take()
    p = req.json["params"]
    assert p["to"] == "+8613800000002"
    assert p["message"].startswith("[P1] 新工单：Pump hot")
    assert journal.events[0][3]["language"] == "zh-CN"


def test_channel_template_overrides_per_language(receiver: Receiver) -> None:
    ch, _ = channel(f"json://127.0.0.1:{receiver.port}/t", templates="""
    templates:
      en: {title: "{severity} {device}", body: "{site} {labels.sensor} {value:.0f} → {oncall}"}
""")
    ch.deliver(change())
    (req,) = receiver.take()
    assert req.json["title"] == "P1 pump-01"
    assert req.json["message"] == "plant-north bearing 94 → alex"


# -- email ------------------------------------------------------------------------------------

class Mailbox:
    def __init__(self) -> None:
        self.got: list[tuple[list[str], Message, bool, bool]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.got.append((list(envelope.rcpt_tos), message_from_bytes(envelope.content),
                         session.ssl is not None, bool(session.authenticated)))
        return "250 OK"


def _auth(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (b"fw", b"s3cret")
    return AuthResult(success=ok, handled=False)


@pytest.fixture
def smtp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Mailbox, int]]:
    cert, key = self_signed(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # the client trusts the test CA
    box, port = Mailbox(), free_port()
    ctl = Controller(box, hostname="127.0.0.1", port=port, tls_context=server_context(cert, key),
                     require_starttls=True, authenticator=_auth, auth_require_tls=True)
    ctl.start()
    yield box, port
    ctl.stop()


def test_email_over_smtp_starttls(smtp: tuple[Mailbox, int]) -> None:
    box, port = smtp
    url = (f"mailto://fw:s3cret@127.0.0.1:{port}?mode=starttls&from=fieldwatch@example.com"
           "&to={to}")
    ch, journal = channel(url, contact="email")
    ch.deliver(change())
    ((rcpt, msg, tls, authed),) = box.got
    assert rcpt == ["alex@example.com"] and tls and authed
    assert str(make_header(decode_header(msg["Subject"]))) == "[P1] New ticket: Pump hot"
    text = msg.get_payload(decode=True) if not msg.is_multipart() else \
        msg.get_payload()[0].get_payload(decode=True)
    assert b"pump-01" in text
    assert journal.kinds() == [("notification_sent", "alex")]


# -- failures: refused for good, or retried ---------------------------------------------------

def test_http_400_is_refused_for_good_and_written_down(endpoints: Receiver) -> None:
    ch, journal = channel(SLACK)
    endpoints.status = 400
    receipt = ch.deliver(change())
    assert "1 refused" in receipt.detail
    ((_, kind, reason, data),) = journal.events
    assert kind == "notification_failed" and "error=400" in reason and data["to"] == "room"


@pytest.mark.parametrize("status", [503, 429])
def test_5xx_and_429_are_retried(endpoints: Receiver, status: int) -> None:
    ch, journal = channel(SLACK)
    endpoints.status = status
    with pytest.raises(DeskUnavailable):
        ch.deliver(change())
    assert journal.events == []


def test_connection_refused_is_retried() -> None:
    port = free_port()
    ch, journal = channel(f"json://127.0.0.1:{port}/x")
    with pytest.raises(DeskUnavailable, match="Connection error"):
        ch.deliver(change())
    assert journal.events == []


def test_person_without_the_contact_is_a_recorded_failure(receiver: Receiver) -> None:
    """dana (the lead) has no telegram: written on the timeline, nothing sent, not retried."""
    ch, journal = channel(f"tgram://{TELEGRAM_TOKEN}/{{to}}/", "telegram", notify="escalation")
    ch.deliver(change(action="escalate", data={"recipients": ["dana"]}))
    assert receiver.take() == []
    ((_, kind, reason, _),) = journal.events
    assert kind == "notification_failed" and "dana has no telegram contact" in reason


def test_address_cannot_escape_its_place_in_the_url(receiver: Receiver) -> None:
    """An address with / ? & is quoted: it stays one target, it adds no parameter."""
    from fieldwatch.collector.notify.apprise_channel import personal_url

    url = personal_url("smseagle://t@127.0.0.1/{to}?priority=0", "+49/1?test=1&x")
    assert url == "smseagle://t@127.0.0.1/+49%2F1%3Ftest%3D1%26x?priority=0"


@pytest.mark.parametrize("ok, lines, want", [
    (True, [], (True, False)),
    (False, ["Failed to send Slack: Bad Request., error=400."], (False, False)),
    (False, ["Failed to send: Unauthorized., error=401."], (False, False)),
    (False, ["Failed to send: Too Many Requests., error=429."], (False, True)),
    (False, ["Failed: Request Timeout., error=408."], (False, True)),
    (False, ["Failed to send: Bad Gateway., error=502."], (False, True)),
    (False, ["A Connection error occurred sending JSON notification to 127.0.0.1."],
     (False, True)),
    (False, [], (False, True)),
])
def test_classify(ok: bool, lines: list[str], want: tuple[bool, bool]) -> None:
    a = classify(ok, lines)
    assert (a.ok, a.retry) == want


def test_apprise_refuses_a_url_it_cannot_parse() -> None:
    a = apprise_send("nosuchservice://x/y", "t", "b")
    assert not a.ok and not a.retry and "cannot use" in a.detail


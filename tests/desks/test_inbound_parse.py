"""The desks' webhook bodies, as documented (tests/fixtures/inbound), read into `Inbound`
values; signature schemes; and the parsers under arbitrary input: a Delivery or a
WireFormatError, nothing else."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
from typing import Any

import pytest
from fieldwatch.collector.desks.inbound import glpi, jira, pagerduty, servicenow, zammad
from fieldwatch.collector.desks.inbound.model import Keys, plain, timestamp
from hypothesis import given, settings
from hypothesis import strategies as st

from fieldwatch.errors import WireFormatError
from tests.desks.inbound_kits import fixture

MODULES = {"jira": jira, "zammad": zammad, "pagerduty": pagerduty, "glpi": glpi,
           "servicenow": servicenow}
AT = 1_795_755_600.123  # 2026-11-27T05:00:00.123Z
KEYS = Keys(b"s3cret", "snow")


def body(name: str) -> bytes:
    return json.dumps(fixture(name)).encode()


def test_jira_issue_updated_and_comment() -> None:
    d = jira.parse("jira", {"x-atlassian-webhook-identifier": "wh-1"},
                   body("jira_issue_updated.json"), {})
    [c] = d.changes
    assert (d.key, d.at, c.external_id, c.status, c.actor, c.assignee) == (
        "wh-1", AT, "OPS-1", "acknowledged", "Ines Engineer", None)
    assert "fieldwatch-1" in c.references
    done = fixture("jira_issue_updated.json")
    done["issue"]["fields"]["status"] = {"name": "Erledigt", "statusCategory": {"key": "done"}}
    done["issue"]["fields"]["resolution"] = {"name": "Fixed"}
    [c] = jira.parse("jira", {}, json.dumps(done).encode(), {}).changes
    assert (c.status, c.resolution) == ("resolved", "Fixed")  # by category, any language
    [c] = jira.parse("jira", {}, json.dumps(done).encode(), {"Erledigt": "open"}).changes
    assert c.status == "open"  # a status named in `states` wins
    d = jira.parse("jira", {}, body("jira_comment_created.json"), {})
    [c] = d.changes
    assert c.comment is not None and (c.comment.id, c.comment.text) == (
        "10301", "Bearing noise confirmed on site.")
    assert d.key.startswith("sha256:")  # no delivery id header: a hash of the body


def test_jira_events_fieldwatch_does_not_follow_are_empty() -> None:
    doc = {**fixture("jira_issue_updated.json"), "webhookEvent": "worklog_updated"}
    assert jira.parse("jira", {}, json.dumps(doc).encode(), {}).changes == ()


def test_zammad_trigger() -> None:
    d = zammad.parse("zammad", {"x-zammad-delivery": "d-9", "x-zammad-trigger": "fw"},
                     body("zammad_trigger.json"), {})
    [c] = d.changes
    assert (d.key, c.at, c.external_id, c.references, c.status, c.actor, c.assignee) == (
        "d-9", AT, "1", ("fieldwatch-1",), "acknowledged", "ines@example.com", None)
    assert c.comment is not None
    assert c.comment.text == "Bearing noise confirmed on site.\nParts ordered."  # from HTML
    doc = fixture("zammad_trigger.json")
    doc["ticket"].update(state="pending close", owner_id=5, owner={"id": 5, "login": "emma"})
    doc["article"]["sender"] = "System"
    [c] = zammad.parse("zammad", {}, json.dumps(doc).encode(), {"pending close": "resolved"}
                       ).changes
    assert (c.status, c.assignee, c.comment) == ("resolved", "emma", None)


def test_pagerduty_incident_and_note() -> None:
    d = pagerduty.parse("pd", {}, body("pagerduty_incident.json"), {})
    [c] = d.changes
    assert (d.key, c.kind, c.at, c.external_id, c.alias, c.status, c.actor, c.assignee) == (
        "01DEN3Q8MHDQNWWPB4D2KMVQ2V", "incident.acknowledged", AT, "fieldwatch-1", "PGR0VU2",
        "acknowledged", "Ines Engineer", None)  # only a reassignment names the assignee
    doc = fixture("pagerduty_incident.json")
    doc["event"]["event_type"] = "incident.reassigned"
    [c] = pagerduty.parse("pd", {}, json.dumps(doc).encode(), {}).changes
    assert c.assignee == "Ines Engineer"
    [c] = pagerduty.parse("pd", {}, body("pagerduty_note.json"), {}).changes
    assert (c.external_id, c.alias, c.status) == (None, "PGR0VU2", None)
    assert c.comment is not None and c.comment.id == "P2LA89X"
    doc["event"]["data"] = {"type": "service", "id": "PF9KMXH"}
    assert pagerduty.parse("pd", {}, json.dumps(doc).encode(), {}).changes == ()


def test_glpi_ticket_and_followup() -> None:
    headers = {"x-glpi-timestamp": "1795755600"}
    d = glpi.parse("glpi", headers, body("glpi_ticket.json"), {})
    [c] = d.changes
    assert (d.at, c.kind, c.external_id, c.references, c.status, c.assignee) == (
        1795755600.0, "ticket.update", "1", ("fieldwatch-1",), "acknowledged", None)
    assert d.key == glpi.parse("glpi", headers, body("glpi_ticket.json"), {}).key
    assert d.key != glpi.parse("glpi", {"x-glpi-timestamp": "1795755601"},
                               body("glpi_ticket.json"), {}).key
    [c] = glpi.parse("glpi", headers, body("glpi_followup.json"), {}).changes
    assert c.external_id == "1" and c.comment is not None
    assert c.comment.text == "Bearing noise confirmed on site."


def test_servicenow_record() -> None:
    d = servicenow.parse("snow", {}, body("servicenow_incident.json"), {})
    [c] = d.changes
    assert (d.key, c.at, c.external_id, c.references, c.status, c.actor, c.assignee,
            c.comment) == (
        "c4ca4238a0b923820dcc509a6f75849b:4", 1795755600.0,
        "c4ca4238a0b923820dcc509a6f75849b", ("fieldwatch-1",), "acknowledged",
        "ines.engineer", None, None)
    plain_doc = {"result": {"sys_id": "abc", "state": "6", "sys_updated_on":
                            "2026-11-27 05:00:00", "close_notes": "new bearing",
                            "work_notes": "2026-11-27 05:00:00 - Ines (Work notes)\nbearing"}}
    [c] = servicenow.parse("snow", {}, json.dumps(plain_doc).encode(), {}).changes
    assert (c.status, c.resolution) == ("resolved", "new bearing")
    assert c.comment is not None and c.comment.text.endswith("bearing")


def _sig(digest: str, data: bytes) -> str:
    return hmac.new(KEYS.secret, data, digest).hexdigest()


def test_signature_schemes() -> None:
    b = b'{"a": 1}'
    assert jira.verify({"x-hub-signature": "sha256=" + _sig("sha256", b)}, b, KEYS)
    assert not jira.verify({"x-hub-signature": _sig("sha256", b)}, b, KEYS)  # prefix needed
    assert zammad.verify({"x-hub-signature": "sha1=" + _sig("sha1", b)}, b, KEYS)
    assert not zammad.verify({"x-hub-signature": "sha256=" + _sig("sha256", b)}, b, KEYS)
    good = "v1=" + _sig("sha256", b)
    assert pagerduty.verify({"x-pagerduty-signature": f"v1=abc, {good}"}, b, KEYS)
    assert not pagerduty.verify({"x-pagerduty-signature": ",".join(["v1=0"] * 10 + [good])},
                                b, KEYS)  # at most ten looked at
    assert glpi.verify({"x-glpi-timestamp": "17", "x-glpi-signature": _sig("sha256", b + b"17")},
                       b, KEYS)
    assert not glpi.verify({"x-glpi-signature": _sig("sha256", b)}, b, KEYS)  # no timestamp
    basic = base64.b64encode(b"snow:s3cret").decode()
    assert servicenow.verify({"authorization": f"Basic {basic}"}, b, KEYS)
    assert servicenow.verify({"authorization": "Bearer s3cret"}, b, KEYS)
    wrong_user = base64.b64encode(b"admin:s3cret").decode()
    for auth in (f"Basic {wrong_user}", "Basic !!!", "Bearer s3cre", "Token s3cret", ""):
        assert not servicenow.verify({"authorization": auth}, b, KEYS)
    for m in MODULES.values():  # never an exception on a hostile header
        assert not m.verify({"x-hub-signature": "sha256=ü", "x-pagerduty-signature": "v1=ü",
                             "x-glpi-signature": "ü", "x-glpi-timestamp": "ü",
                             "authorization": "Basic ü"}, b, KEYS)


@pytest.mark.parametrize(("value", "expected"), [
    ("2026-11-27T05:00:00.123Z", AT), ("2026-11-27T05:00:00.123+0000", AT),
    ("2026-11-27T06:00:00.123+01:00", AT), ("2026-11-27T05:00:00.123456789Z", AT + 0.000456),
    ("2026-11-27 05:00:00", AT - 0.123), (1795755600123, AT), (1795755600.123, AT),
])
def test_timestamps_as_desks_write_them(value: Any, expected: float) -> None:
    assert timestamp(value, "t") == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("value", ["", "soon", None, True, [], {}])
def test_bad_timestamps(value: Any) -> None:
    with pytest.raises(WireFormatError):
        timestamp(value, "t")


def test_plain_text_of_html() -> None:
    assert plain("a<br>b &amp; <i>c</i><p>d</p>", html_body=True) == "a\nb & c\nd"
    assert plain(None) == "" and len(plain("x" * 20_000)) == 10_000


HEADERS = {"x-glpi-timestamp": "1795755600", "x-atlassian-webhook-identifier": "x"}
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["event", "ticket", "issue", "item", "data", "id", "key", "status",
                         "state", "timestamp", "webhookEvent", "event_type", "occurred_at",
                         "updated_at", "sys_id", "sys_updated_on", "type", "incident",
                         "items_id", "itemtype", "comment", "article", "fields", "result"]),
        inner, max_size=6), max_leaves=25)


@pytest.mark.parametrize("name", MODULES)
@settings(max_examples=120, deadline=None)
@given(data=st.binary(max_size=300) | JSON_VALUES.map(lambda v: json.dumps(v).encode()))
def test_parse_is_a_delivery_or_a_reason(name: str, data: bytes) -> None:
    try:
        d = MODULES[name].parse(name, HEADERS, data, {})
    except WireFormatError as exc:
        assert exc.reason
        return
    assert d.key and all(c.desk == name for c in d.changes)


@pytest.mark.parametrize("name", MODULES)
def test_documented_bodies_survive_every_field_removed(name: str) -> None:
    """Drop any one field of a documented body: still a Delivery or a WireFormatError."""
    files = {"jira": ["jira_issue_updated.json", "jira_comment_created.json"],
             "zammad": ["zammad_trigger.json"],
             "pagerduty": ["pagerduty_incident.json", "pagerduty_note.json"],
             "glpi": ["glpi_ticket.json", "glpi_followup.json"],
             "servicenow": ["servicenow_incident.json"]}[name]
    for f in files:
        for path in _paths(fixture(f)):
            doc = fixture(f)
            _drop(doc, path)
            with contextlib.suppress(WireFormatError):  # anything else fails the test
                MODULES[name].parse(name, HEADERS, json.dumps(doc).encode(), {})


def _paths(doc: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = []
    if isinstance(doc, dict):
        for k, v in doc.items():
            out.append((*prefix, k))
            out += _paths(v, (*prefix, k))
    return out


def _drop(doc: Any, path: tuple[str, ...]) -> None:
    for k in path[:-1]:
        doc = doc[k]
    del doc[path[-1]]


def test_a_changed_body_changes_the_hash_key() -> None:
    a = servicenow.parse("s", {}, b'{"sys_id": "x", "sys_updated_on": "2026-01-01 00:00:00"}',
                         {})
    b = servicenow.parse("s", {}, b'{"sys_id": "x", "sys_updated_on": "2026-01-01 00:00:01"}',
                         {})
    assert a.key != b.key and a.key == "sha256:" + hashlib.sha256(
        len(b'{"sys_id": "x", "sys_updated_on": "2026-01-01 00:00:00"}').to_bytes(8, "big")
        + b'{"sys_id": "x", "sys_updated_on": "2026-01-01 00:00:00"}').hexdigest()

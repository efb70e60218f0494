"""The pages over HTTP, in-process: who may see and do what, every action through the desk,
escaping, the queue's order and filters, errors as pages, live versions, languages."""

from __future__ import annotations

import re

import pytest
from fieldwatch.collector.tickets.cases import Resolution
from fieldwatch.collector.web.pages.render import HEADERS

from tests.web.pages.conftest import Desk

PAGES = ["/", "/tickets/new", "/approvals", "/silences", "/kpi", "/report",
         "/report?month=2026-12", "/kpi?period=7d", "/?state=all", "/?state=closed"]
NOTE = {"cause": "fan bearing worn", "fix": "replaced the fan", "parts": "fan 80mm, paste",
        "minutes": "35", "mode": "on_site"}


def seeded(web: Desk) -> dict[str, int]:
    web.device("hq", "web-01", {"type": "server", "model": "R740", "serial": "X1"})
    web.device("branch", "pos-3", {"type": "pos"})
    ids = {"disk": web.fire("disk_nearly_full", "hq", "web-01", 93.5, "Disk / at 94%",
                            mount="/"),
           "pos": web.fire("temp_out_of_range", "branch", "pos-3", 81.0, "POS hot")}
    ids["phone"] = web.desk.create(device="printer-7", site="hq", title="打印机卡纸 paper jam",
                                   actor="ada", customer="Mrs Wu, 555-1234", priority="P1")["id"]
    return ids


def test_every_page_renders_for_a_supervisor(web: Desk) -> None:
    ids = seeded(web)
    c = web.client("ada")
    for path in [*PAGES, *(f"/tickets/{i}" for i in ids.values()),
                 f"/tickets/{ids['disk']}/similar", "/device?site=hq&id=web-01",
                 "/device?site=hq&id=printer-7&range=7d"]:
        r = c.get(path)
        assert r.status_code == 200, (path, r.text[:500])
        assert r.headers["content-type"].startswith("text/html")
        for k, v in HEADERS.items():
            assert r.headers[k] == v
        assert "<script src=\"/static/desk.js\" defer></script>" in r.text or "similar" in path


def test_nobody_logged_in_is_sent_to_the_login_form_or_gets_401(web: Desk) -> None:
    c = web.client(None)
    for path in ["/", "/tickets/1", "/device?site=hq&id=x", "/kpi", "/desk/live"]:
        r = c.get(path)
        assert r.status_code == 303 and r.headers["location"].startswith("/login?next="), path
    assert c.post("/desk/tickets/1/ack").status_code == 401


def test_static_files_come_from_the_package(web: Desk) -> None:
    c = web.client(None)
    css, js = c.get("/static/desk.css"), c.get("/static/desk.js")
    assert css.status_code == js.status_code == 200
    assert "text/css" in css.headers["content-type"] and "javascript" in js.headers["content-type"]
    assert c.get("/static/../i18n/zh.po").status_code == 404


def test_the_icon_is_there_for_anyone(web: Desk) -> None:
    """/favicon.ico, which browsers ask for unprompted, leads to the icon the pages link."""
    c = web.client(None)
    ico = c.get("/favicon.ico")
    assert (ico.status_code, ico.headers["location"]) == (301, "/static/favicon.svg")
    assert c.request("HEAD", "/favicon.ico").status_code == 301
    svg = c.get("/static/favicon.svg")
    assert svg.status_code == 200 and svg.headers["content-type"] == "image/svg+xml"
    assert svg.text.startswith("<svg ")
    link = '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">'
    assert link in web.client("ada").get("/").text
    assert link in web.client("ada").get("/tickets/999999").text  # the error page too
    assert "<link rel=icon href=/static/favicon.svg" in c.get("/login").text


def test_a_viewer_reads_but_does_not_act(web: Desk) -> None:
    ids = seeded(web)
    c = web.client("vic")
    page = c.get(f"/tickets/{ids['disk']}").text
    assert "act-ack" not in page and "/desk/tickets/" not in page
    r = c.post(f"/desk/tickets/{ids['disk']}/ack")
    assert r.status_code == 403 and "may not ticket.act" in r.json()["detail"]
    assert web.store.get_ticket(ids["disk"])["state"] == "open"
    assert c.get("/tickets/new").status_code == 403
    assert c.post("/desk/tickets", {"site": "hq", "device": "d", "title": "t"}).status_code == 403
    assert c.post("/desk/silences", {"reason": "r", "device": "d"}).status_code == 403


def test_a_user_limited_to_a_site_sees_and_acts_only_there(web: Desk) -> None:
    ids = seeded(web)
    c = web.client("eng")  # engineer on hq only
    queue = c.get("/").text
    assert "Disk / at 94%" in queue and "POS hot" not in queue
    assert c.get(f"/tickets/{ids['pos']}").status_code == 404  # not even confirmed to exist
    assert c.get("/device?site=branch&id=pos-3").status_code == 404
    assert c.post(f"/desk/tickets/{ids['pos']}/ack").status_code == 404
    assert c.post(f"/desk/tickets/{ids['disk']}/ack").json()["state"] == "acknowledged"
    r = c.post("/desk/tickets", {"site": "branch", "device": "d", "title": "t"})
    assert r.status_code == 403
    assert "branch" not in c.get("/?site=branch").text.split("<section id=\"queue\"")[1]


def test_working_a_ticket_through_every_action(web: Desk) -> None:
    tid = seeded(web)["disk"]
    c = web.client("ada")

    def act(action: str, **body: object) -> dict[str, object]:
        r = c.post(f"/desk/tickets/{tid}/{action}", {"csrf": "", **body})
        assert r.status_code == 200, r.text
        return r.json()

    assert act("ack")["state"] == "acknowledged"
    assert act("assign", assignee="bo")["state"] == "acknowledged"
    act("wait", text="asked for a maintenance window")
    assert web.store.get_ticket(tid)["waiting_since"] is not None
    act("resume")
    assert act("start")["state"] == "in_progress"
    act("comment", text="fan sounds rough")
    r = c.post(f"/desk/tickets/{tid}/resolve", {"cause": "x"})  # no fix: refused, named
    assert r.status_code == 422 and "fix" in r.json()["detail"]
    assert act("resolve", **NOTE)["state"] == "resolved"
    t = web.store.get_ticket(tid)
    assert Resolution(**t["resolution"]) == Resolution(
        cause="fan bearing worn", fix="replaced the fan", parts=["fan 80mm", "paste"],
        minutes=35, mode="on_site")
    assert act("close", reason="fixed", satisfaction="4")["state"] == "closed"
    assert web.store.get_ticket(tid)["satisfaction"] == 4
    assert act("reopen", text="fan noise is back")["state"] == "reopened"
    events = [(e["actor"], e["kind"]) for e in web.store.timeline(tid)]
    assert ("ada", "acknowledged") in events and ("ada", "closed") in events
    assert ("ada", "reopened") in events and ("ada", "comment") in events
    page = c.get(f"/tickets/{tid}").text
    assert "fan sounds rough" in page and "fan bearing worn" not in page.split("timeline")[0]


def test_refusals_are_clear_and_change_nothing(web: Desk) -> None:
    tid = seeded(web)["disk"]
    c = web.client("ada")
    r = c.post(f"/desk/tickets/{tid}/reopen", {"text": "x"})
    assert r.status_code == 409 and "cannot reopen a ticket that is open" in r.json()["detail"]
    assert c.post(f"/desk/tickets/{tid}/close", {"reason": "fixed"}).status_code == 409
    assert c.post(f"/desk/tickets/{tid}/explode").status_code == 404
    assert c.post("/desk/tickets/99999/ack").status_code == 404
    assert c.post(f"/desk/tickets/{tid}/ack", {"bogus": 1}).status_code == 422
    assert c.post(f"/desk/tickets/{tid}/close", {"satisfaction": "9"}).status_code == 422
    assert c.request("POST", f"/desk/tickets/{tid}/ack", content=b"[1]",
                     headers={"Content-Type": "application/json"}).status_code == 422
    # page paths take forms (the accounts layer checks a session's CSRF token on them); this
    # route's body is JSON, so a form is refused there, and changes nothing
    assert c.request("POST", f"/desk/tickets/{tid}/ack", content=b"a=1", headers={
        "Content-Type": "application/x-www-form-urlencoded"}).status_code == 422
    assert c.request("POST", f"/desk/tickets/{tid}/ack", content=b"a", headers={
        "Content-Type": "text/plain"}).status_code == 415
    assert c.request("POST", f"/desk/tickets/{tid}/ack", json={}, headers={
        "Origin": "http://evil.example"}).status_code == 403
    assert web.store.get_ticket(tid)["state"] == "open"
    assert c.get("/tickets/2147483648").status_code == 422
    assert c.get("/tickets/99999").status_code == 404


def test_errors_of_pages_are_pages_and_of_json_routes_json(web: Desk) -> None:
    c = web.client("ada")
    page = c.get("/tickets/99999")
    assert page.status_code == 404 and "<h1>404</h1>" in page.text
    assert "there is no ticket 99999" in page.text
    bad = c.get("/report?month=2026-13")
    assert bad.status_code == 422 and "YYYY-MM" in bad.text
    assert "<h1>422</h1>" in c.get("/device?site=hq").text
    assert c.post("/desk/tickets/99999/ack").json() == {"detail": "there is no ticket 99999"}
    missing = c.get("/api/v1/tickets/99999")  # the API answers JSON, for the same user
    assert missing.status_code == 404 and "detail" in missing.json()
    assert web.client(None).get("/api/v1/tickets/1").status_code == 401


def test_intake_opens_a_ticket_on_the_sla_clock(web: Desk) -> None:
    c = web.client("eng")
    r = c.post("/desk/tickets", {"csrf": "", "site": "hq", "device": "printer-7",
                                 "title": "Paper jam, tray 2", "customer": "Mrs Wu, 555-1234",
                                 "priority": "P1", "description": "jams every third sheet"})
    assert r.status_code == 201, r.text
    tid = r.json()["id"]
    assert r.json()["url"] == f"/tickets/{tid}"
    t = web.store.get_ticket(tid)
    assert (t["source"], t["sla_priority"], t["customer"]) == ("manual", "P1", "Mrs Wu, 555-1234")
    assert web.store.timeline(tid)[0]["actor"] == "eng"
    page = c.get(f"/tickets/{tid}").text
    assert "Reported by hand" in page and "jams every third sheet" in page
    due = web.desk.sla(t, web.clock.now())["response"]["due"]
    assert due is not None
    for bad, why in (({"site": "hq", "device": "", "title": "t"}, "device"),
                     ({"site": "hq", "device": "d", "title": "t", "priority": "P7"}, "priority"),
                     ({"site": "hq", "device": "d", "title": "t", "team": "nope"}, "team")):
        r = c.post("/desk/tickets", bad)
        assert r.status_code in (409, 422) and why in r.json()["detail"]


def test_html_in_ids_labels_and_titles_is_shown_as_text(web: Desk) -> None:
    evil = '<img src=x onerror="alert(1)">'
    web.device("hq", evil, {"type": "<b>bold</b>", "note": "<script>alert(2)</script>"})
    tid = web.fire("disk_nearly_full", "hq", evil, 95.0, f"<script>alert(3)</script>{evil}",
                   mount="</code><svg onload=alert(4)>")
    tid2 = web.desk.create(device=evil, site="<i>x</i>", title="\"'><svg/onload=alert(5)>",
                           actor="ada", customer="<u>c</u>")["id"]
    web.history.add("hq", evil, "disk.used_percent", [(web.clock.now() - 60, 1.0)],
                    mount="<script>alert(6)</script>")
    c = web.client("ada")
    for path in ["/", f"/tickets/{tid}", f"/tickets/{tid2}", f"/tickets/{tid}/similar",
                 "/?q=%3Cscript%3E", "/device?site=hq&id=" + evil.replace(" ", "%20"),
                 "/?state=all&site=%3Ci%3Ex%3C/i%3E"]:
        body = c.get(path).text
        assert re.findall(r"<script\b", body) == ([] if "similar" in path else
                                                   ['<script'])  # only our own desk.js
        for tag in ("<img", "<svg onload", "<svg/onload", "<b>", "<i>", "<u>"):
            assert tag not in body, (path, tag)
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in c.get("/").text


def test_queue_orders_by_urgency_and_filters(web: Desk) -> None:
    now = web.clock.now()
    web.clock.t = now - 7200
    late = web.desk.create(device="a", site="hq", title="late P1", actor="ada", priority="P1")
    web.clock.t = now - 600
    soon = web.desk.create(device="b", site="hq", title="soon P1", actor="ada", priority="P1")
    web.clock.t = now
    later = web.desk.create(device="c", site="branch", title="later P3", actor="ada",
                            priority="P3", team="hardware")
    c = web.client("ada")
    body = c.get("/").text
    order = [int(x) for x in re.findall(r'data-ticket="(\d+)"', body)]
    assert order == [late["id"], soon["id"], later["id"]]
    assert f'class="lvl-breached" data-ticket="{late["id"]}"' in body
    assert "1 breached" in body
    assert re.findall(r'data-ticket="(\d+)"', c.get("/?site=branch").text) == [str(later["id"])]
    assert re.findall(r'data-ticket="(\d+)"', c.get("/?team=hardware&priority=P3").text) == [
        str(later["id"])]
    assert re.findall(r'data-ticket="(\d+)"', c.get("/?q=soon").text) == [str(soon["id"])]
    assert re.findall(r'data-ticket="(\d+)"', c.get(f"/?q=%23{late['id']}").text) == [
        str(late["id"])]
    web.desk.act(late["id"], "resolve", "ada", note=Resolution(cause="c", fix="f"))
    assert str(late["id"]) not in re.findall(r'data-ticket="(\d+)"', c.get("/").text)
    assert re.findall(r'data-ticket="(\d+)"', c.get("/?state=resolved").text) == [
        str(late["id"])]
    bad = c.get("/?priority=P9&page=0").text
    assert "priority: one of P1, P2, P3" in bad and "page: a number" in bad


def test_the_queue_pages(web: Desk) -> None:
    for i in range(53):
        web.desk.create(device=f"d{i}", site="hq", title=f"t{i}", actor="ada", priority="P2")
    c = web.client("ada")
    first = c.get("/").text
    assert len(re.findall(r"data-ticket=", first)) == 50 and "page 1 of 2" in first
    assert len(re.findall(r"data-ticket=", c.get("/?page=2").text)) == 3


def test_the_device_page_charts_each_metric_with_its_thresholds(web: Desk) -> None:
    web.device("hq", "web-01", {"type": "server"})
    now = web.clock.now()
    web.history.add("hq", "web-01", "disk.used_percent",
                    [(now - 3600 + 60 * i, 80.0 + i / 10) for i in range(40)], mount="/")
    web.history.add("hq", "web-01", "temp.celsius", [(now - 100, 40.0)], sensor="cpu")
    web.history.add("hq", "other", "temp.celsius", [(now - 100, 99.0)])
    body = web.client("ada").get("/device?site=hq&id=web-01&range=6h").text
    assert body.count('<figure class="chart-box"') == 2
    assert re.findall(r'data-points="(\d+)"', body) == ["40", "1"]
    assert 'class="threshold when"' in body and 'class="threshold clear"' in body
    assert "disk_nearly_full &gt; 90" in body and "temp_out_of_range &lt; 5" in body
    one = web.client("ada").get("/device?site=hq&id=web-01&metric=temp.celsius").text
    assert one.count('<figure class="chart-box"') == 1


def test_a_failing_history_shows_its_error_not_a_500(web: Desk) -> None:
    web.device("hq", "web-01")

    class Broken:
        def series(self, query: object) -> list[object]:
            raise OSError("connection refused")

        def query(self, query: object) -> list[object]:
            raise OSError("connection refused")

    web.pages.history = lambda: Broken()  # type: ignore[assignment,return-value]
    r = web.client("ada").get("/device?site=hq&id=web-01")
    assert r.status_code == 200 and "connection refused" in r.text
    web.pages.history = None
    assert "No metric history is configured" in web.client("ada").get(
        "/device?site=hq&id=web-01").text


def test_approving_a_held_diagnostic(web: Desk) -> None:
    tid = seeded(web)["disk"]
    web.store.add_event(tid, web.clock.now(), "system", "diag_skipped",
                        "clear_spool changes the device: it runs only after an approval on "
                        "this ticket")
    page = web.client("ada").get("/approvals").text
    assert f'data-ticket="{tid}"' in page and "<code>clear_spool</code>" in page
    assert web.client("eng").post(f"/desk/tickets/{tid}/approvals",
                                  {"action": "clear_spool"}).status_code == 403
    r = web.client("ada").post(f"/desk/tickets/{tid}/approvals", {
        "csrf": "", "action": "clear_spool", "on_behalf_of": "Mrs Wu", "valid_hours": "1"})
    assert r.status_code == 201, r.text
    a = web.pages.diag.approvals(tid)[0]
    assert (a["by"], a["on_behalf_of"], a["expires"] - a["at"]) == ("ada", "Mrs Wu", 3600)
    assert web.store.timeline(tid)[-1]["kind"] == "approval"
    assert 'class="tag">approved' in web.client("ada").get("/approvals").text
    assert web.client("ada").post(f"/desk/tickets/{tid}/approvals",
                                  {"action": "rm -rf /"}).status_code == 422


def test_silences_from_the_page(web: Desk) -> None:
    c = web.client("ada")
    r = c.post("/desk/silences", {"csrf": "", "site": "hq", "device": "=~web-.*",
                                  "labels": "mount=/\n\n", "duration": "2h",
                                  "reason": "disk swap tonight"})
    assert r.status_code == 201, r.text
    sid = r.json()["id"]
    (s,) = web.pages.silences.list(web.clock.now())
    assert s["matchers"] == {"site": "hq", "device": "=~web-.*", "mount": "/"}
    assert s["author"] == "ada" and s["ends_at"] - s["starts_at"] == 7200
    assert "disk swap tonight" in c.get("/silences").text
    for bad, why in (({"reason": "r"}, "at least one matcher"),
                     ({"device": "x", "reason": "r", "duration": "soon"}, "duration"),
                     ({"device": "x", "reason": "r", "labels": "novalue"}, "name=value"),
                     ({"device": "=~(", "reason": "r"}, "regex")):
        r = c.post("/desk/silences", bad)
        assert r.status_code == 422 and why in r.json()["detail"], r.text
    assert c.post(f"/desk/silences/{sid}/expire").status_code == 200
    assert c.post(f"/desk/silences/{sid}/expire").status_code == 404
    assert web.pages.silences.list(web.clock.now()) == []


def test_a_site_limited_supervisor_silences_only_its_sites(web: Desk) -> None:
    web.add_user("sue", "supervisor", ["hq"])
    c = web.client("sue")
    assert c.post("/desk/silences", {"device": "x", "reason": "r"}).status_code == 403
    assert c.post("/desk/silences", {"site": "branch", "reason": "r"}).status_code == 403
    assert c.post("/desk/silences", {"site": "=~.*", "reason": "r"}).status_code == 403
    ok = c.post("/desk/silences", {"site": "hq", "reason": "r"}).json()["id"]
    other = web.pages.silences.add({"device": "x"}, web.clock.now(), web.clock.now() + 60, "ada",
                                   "r", web.clock.now())
    page = c.get("/silences").text
    assert ok in page and other not in page
    assert c.post(f"/desk/silences/{other}/expire").status_code == 404


def test_kpis_and_the_monthly_report(web: Desk) -> None:
    ids = seeded(web)
    web.clock.advance(600)
    web.desk.act(ids["disk"], "resolve", "ada", note=Resolution(cause="fan", fix="f",
                                                                parts=["fan"]))
    web.desk.act(ids["disk"], "close", "ada", reason="fixed", satisfaction=5)
    c = web.client("ada")
    kpi = c.get("/kpi?period=7d").text
    assert kpi.count('<svg class="chart bars"') == 4
    assert re.search(r'<rect class="bar s0"[^>]*><title>fan · tickets: 1</title>', kpi)
    month = c.get("/report?month=2027-03").text
    assert "Service report 2027-03" in month and "<td>fan</td>" in month
    assert 'href="/report?month=2027-02"' in month and 'href="/report?month=2027-04"' in month
    assert c.get("/kpi?period=2y").status_code == 422


def test_the_live_version_moves_with_every_change(web: Desk) -> None:
    tid = seeded(web)["disk"]
    c = web.client("ada")
    v1 = c.get("/desk/live").json()["v"]
    assert c.get("/desk/live").json()["v"] == v1
    c.post(f"/desk/tickets/{tid}/comment", {"text": "hello"})
    v2 = c.get("/desk/live").json()["v"]
    web.pages.silences.add({"device": "x"}, web.clock.now(), web.clock.now() + 60, "ada",
                                   "r", web.clock.now())
    v3 = c.get("/desk/live").json()["v"]
    web.clock.advance(60)
    v4 = c.get("/desk/live").json()["v"]
    assert len({v1, v2, v3, v4}) == 4


def test_language_per_user_and_the_switch(web: Desk) -> None:
    assert "工单队列" in web.client("lin").get("/").text  # lin's profile says zh
    c = web.client("ada")
    assert '<html lang="en">' in c.get("/").text
    assert c.post("/desk/language", {"language": "fr"}).status_code == 422
    assert c.post("/desk/language", {"csrf": "", "language": "zh"}).json() == {"language": "zh"}
    page = c.get("/").text
    assert '<html lang="zh-Hans">' in page and "工单队列" in page and "Ticket queue" not in page
    web.pages.set_language = None
    assert c.post("/desk/language", {"language": "en"}).status_code == 501


@pytest.mark.parametrize("path", ["/", "/tickets/new", "/approvals", "/silences", "/kpi",
                                  "/report", "/tickets/1", "/device?site=hq&id=web-01"])
def test_chinese_pages_have_no_english_left_in_their_own_text(web: Desk, path: str) -> None:
    seeded(web)
    body = web.client("lin").get(path).text
    words = set(re.findall(r">\s*([A-Z][a-z]+(?: [a-z]+)*)\s*<", body))
    # names that stay as they are in Chinese too: data, product names, units
    words -= {"Disk", "English", "Alertmanager", "Mrs", "Wu", "POS"}
    assert not words, words

"""The desk in a real headless Chromium (Debian's /usr/bin/chromium, driven by Playwright; no
browser is ever downloaded): work a ticket from open to closed, take a phoned-in fault,
approve a diagnostic, see a device chart with its points and thresholds, switch to Chinese,
live updates without a reload, and HTML in data shown as text.

One browser for the module (tests/web/conftest.py's `browser`: Playwright's sync API keeps an
event loop running while it lives, which would break other modules' `asyncio.run`), a fresh
context and server per test. With FIELDWATCH_SCREENSHOTS=docs/desk the tests write the
screenshots docs/desk.md shows.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fieldwatch.collector.tickets.cases import Resolution
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.web.conftest import password_of
from tests.web.pages.conftest import Desk, build, serve

SHOTS = os.environ.get("FIELDWATCH_SCREENSHOTS")
POINTS_PER_SERIES = """svg => [...svg.querySelectorAll('g.series')].map(g =>
    [...g.querySelectorAll('polyline')].reduce((n, p) => n + p.points.numberOfItems, 0))"""


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Desk, str]]:
    d = build(tmp_path, poll_seconds=0.25)
    server = serve(d.app)
    yield d, f"http://127.0.0.1:{server.port}"
    server.stop()
    d.store.engine.dispose()


def login(context: BrowserContext, base: str, user: str) -> None:
    """Log `user` in for this browser context through the login form (the session cookie
    stays in the context)."""
    p = context.new_page()
    p.goto(base + "/login")
    p.fill("input[name=name]", user)
    p.fill("input[name=password]", password_of(user))
    with p.expect_navigation():
        p.click("button[type=submit]")
    assert "/login" not in p.url, f"{user} could not log in"
    p.close()


@pytest.fixture
def page(browser: Browser, served: tuple[Desk, str]) -> Iterator[Page]:
    _, base = served
    context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=base)
    context.set_default_timeout(15_000)
    login(context, base, "ada")
    p = context.new_page()
    errors: list[str] = []
    p.on("pageerror", lambda e: errors.append(str(e)))
    p.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    yield p
    context.close()
    assert errors == [], errors  # no script error, no CSP violation, no failed request


def shot(page: Page, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"{name}.png"), full_page=True)


def seed(d: Desk) -> dict[str, int]:
    now = d.clock.now()
    d.device("hq", "web-01", {"type": "server", "model": "PowerEdge R740", "serial": "7XK2Q",
                              "os": "Debian 12", "cpus": 16})
    d.device("branch", "pos-3", {"type": "pos"})
    ids = {}
    for dev, v, ago, prio in [("web-01", 93.5, 20 * 3600, "P2"), ("web-02", 91.2, 3600, "P2"),
                              ("db-1", 96.0, 13 * 60, "P1")]:  # breached, on time, at risk
        d.clock.t = now - ago
        ids[dev] = d.fire("disk_nearly_full", "hq", dev, v, f"Disk / on {dev} at {v:.0f}%",
                          severity=prio, team="hardware", mount="/")
    d.clock.t = now - 1800
    ids["pos"] = d.fire("temp_out_of_range", "branch", "pos-3", 74.0, "POS terminal hot (74 °C)")
    d.clock.t = now - 600
    ids["phone"] = d.desk.create(device="printer-7", site="hq", title="打印机卡纸 Paper jam",
                                 actor="ada", customer="吴女士 Mrs Wu, 555-1234", priority="P1",
                                 description="Jams every third sheet since this morning.")["id"]
    d.clock.t = now
    old = d.fire("disk_nearly_full", "hq", "web-03", 92.0, "Disk / on web-03 at 92%", mount="/")
    d.desk.act(old, "resolve", "eli", note=Resolution(
        cause="log rotation stopped", fix="restarted logrotate, removed 40 GB of old logs",
        parts=[], minutes=20))
    return ids


def test_work_a_ticket_from_open_to_closed(page: Page, served: tuple[Desk, str]) -> None:
    d, _ = served
    tid = seed(d)["web-01"]
    page.goto(f"/tickets/{tid}")
    expect(page.locator("#similar li")).to_contain_text("log rotation stopped")  # the library
    expect(page.locator("#reading .opened-value")).to_have_text("93.5")
    shot(page, "ticket")
    state = page.locator("#head .state")
    page.click("button.act-ack")
    expect(state).to_have_text("acknowledged")
    page.fill("form[data-action$='/assign'] input[name=assignee]", "bo")
    page.click("button.act-assign")
    expect(page.locator("#head .assignee")).to_have_text("bo")
    page.click("button.act-wait")
    expect(page.locator("#head .badges")).to_contain_text("waiting on customer since")
    page.click("button.act-resume")
    expect(page.locator("#head .badges")).not_to_contain_text("waiting on customer since")
    page.click("button.act-start")
    expect(state).to_have_text("in progress")
    page.fill("form.resolve input[name=cause]", "disk full of old logs")
    page.click("form.resolve button.act-resolve")  # no fix yet: the browser asks for it
    fix = page.locator("form.resolve textarea[name=fix]")
    assert fix.evaluate("el => el.validity.valueMissing")
    expect(state).to_have_text("in progress")
    page.fill("form.resolve input[name=cause]", "disk full of old logs")
    page.fill("form.resolve textarea[name=fix]", "cleared /var/log, fixed logrotate")
    page.fill("form.resolve input[name=parts]", "none")
    page.fill("form.resolve input[name=minutes]", "25")
    page.check("form.resolve input[value=on_site]")
    page.click("form.resolve button.act-resolve")
    expect(state).to_have_text("resolved")
    page.select_option("form.close select[name=reason]", "fixed")
    page.check("form.close input[name=satisfaction][value='5']")
    page.click("form.close button.act-close")
    expect(state).to_have_text("closed")
    expect(page.locator("#head .satisfaction")).to_have_text("★★★★★")
    kinds = page.locator("#timeline .kind").all_inner_texts()
    for kind in ("acknowledged", "assigned", "waiting on customer", "customer answered",
                 "work started", "resolved", "closed"):
        assert kind in kinds
    t = d.store.get_ticket(tid)
    assert (t["state"], t["assignee"], t["satisfaction"]) == ("closed", "bo", 5)
    assert t["resolution"]["mode"] == "on_site" and t["resolution"]["minutes"] == 25
    assert {e["actor"] for e in d.store.timeline(tid) if e["kind"] == "closed"} == {"ada"}


def test_take_a_phoned_in_fault(page: Page, served: tuple[Desk, str]) -> None:
    d, _ = served
    seed(d)
    page.goto("/tickets/new")
    page.fill("input[name=site]", "branch")
    page.fill("input[name=device]", "pos-3")
    page.fill("input[name=title]", "Card reader rejects every card")
    page.fill("textarea[name=description]", "Since the update at 9:00; cash still works.")
    page.fill("input[name=customer]", "Store manager Li, 555-9876")
    page.check("input[name=priority][value=P2]")
    shot(page, "intake")
    page.click("button.act-create")
    page.wait_for_url("**/tickets/*")
    expect(page.locator("h1 .ticket-title")).to_have_text("Card reader rejects every card")
    expect(page.locator("h1 .prio")).to_have_text("P2")
    expect(page.locator("#head table.clocks")).to_contain_text("response")
    tid = int(page.url.rsplit("/", 1)[1])
    t = d.store.get_ticket(tid)
    assert (t["source"], t["site"], t["sla_priority"]) == ("manual", "branch", "P2")
    page.goto("/")
    expect(page.locator(f"tr[data-ticket='{tid}']")).to_contain_text("phoned in")
    shot(page, "queue")


def test_approve_a_diagnostic(page: Page, served: tuple[Desk, str]) -> None:
    d, _ = served
    tid = seed(d)["db-1"]
    d.store.add_event(tid, d.clock.now(), "system", "diag_skipped",
                      "clear_spool changes the device: it runs only after an approval on "
                      "this ticket")
    page.goto("/approvals")
    row = page.locator(f"#waiting tr[data-ticket='{tid}']")
    expect(row).to_contain_text("clear_spool")
    row.locator("input[name=on_behalf_of]").fill("Mrs Wu")
    shot(page, "approvals")
    row.locator("button.act-approve").click()
    expect(page.locator(f"#waiting tr[data-ticket='{tid}'] .tag")).to_have_text("approved")
    expect(page.locator("#recent")).to_contain_text("Mrs Wu")
    (a,) = d.pages.diag.approvals(tid)
    assert (a["action"], a["by"], a["on_behalf_of"]) == ("clear_spool", "ada", "Mrs Wu")
    page.goto(f"/tickets/{tid}")
    expect(page.locator("#timeline")).to_contain_text(
        "ada on behalf of Mrs Wu approved clear_spool")


def test_a_device_chart_draws_its_points_and_thresholds(page: Page,
                                                        served: tuple[Desk, str]) -> None:
    d, _ = served
    seed(d)
    now = d.clock.now()
    disk = [(now - 86400 + 600 * i, 60 + 32 * (i / 144) ** 2) for i in range(145)]
    d.history.add("hq", "web-01", "disk.used_percent", disk, mount="/")
    d.history.add("hq", "web-01", "disk.used_percent",
                  [(t, 20 + (i % 9)) for i, (t, _) in enumerate(disk)], mount="/boot")
    d.history.add("hq", "web-01", "temp.celsius", [(now - 86400 + 900 * i, 45 + (i % 12))
                                                   for i in range(97)], sensor="cpu")
    page.goto("/device?site=hq&id=web-01")
    expect(page.locator("figure[data-metric='disk.used_percent'] figcaption .hint")
           ).to_have_text("raw")  # a day: every sample as stored
    disk_chart = page.locator("figure[data-metric='disk.used_percent'] svg")
    counts = disk_chart.evaluate(POINTS_PER_SERIES)
    assert counts == [145, 145]
    temp = page.locator("figure[data-metric='temp.celsius'] svg")
    assert temp.evaluate("svg => svg.querySelector('polyline').points.numberOfItems") == 97
    expect(disk_chart.locator("g.threshold.when")).to_have_count(1)
    expect(disk_chart.locator("g.threshold.clear")).to_have_count(1)
    expect(temp.locator("g.threshold.when")).to_have_count(2)
    box = disk_chart.bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] * 0.9, box["y"] + box["height"] / 2)
    expect(disk_chart.locator("g.hover")).to_contain_text("mount=/: ")
    shot(page, "device")
    assert d.history.roll_up() > 0  # the collector's job: the settled buckets rolled up
    page.click("text=7d")
    expect(page.locator(".ranges a[aria-current]")).to_have_text("7d")
    expect(page.locator("figure[data-metric='disk.used_percent'] figcaption .hint")
           ).to_have_text("5m")  # a week: beyond raw's 2 days, read from the 5 min rollups
    counts = page.locator("figure[data-metric='disk.used_percent'] svg").evaluate(
        POINTS_PER_SERIES)
    assert counts == [145, 145]  # a sample every 10 min: one a 5 min bucket


def test_switch_to_chinese(page: Page, served: tuple[Desk, str]) -> None:
    d, _ = served
    ids = seed(d)
    page.goto("/")
    expect(page.locator("h1")).to_have_text("Ticket queue")
    page.click("header .lang button[value=zh]")
    expect(page.locator("h1")).to_have_text("工单队列")
    assert page.locator("html").get_attribute("lang") == "zh-Hans"
    expect(page.locator("nav a[href='/tickets/new']")).to_have_text("电话报修")
    expect(page.locator("tbody tr").first).to_contain_text("已超时")
    assert d.accounts.user("ada").language == "zh"  # type: ignore[union-attr]
    shot(page, "queue-zh")
    page.goto(f"/tickets/{ids['phone']}")
    expect(page.locator("#head h2")).to_have_text("SLA 计时")
    expect(page.locator("button.act-ack")).to_have_text("确认受理")
    shot(page, "ticket-zh")
    page.click("header .lang button[value=en]")
    expect(page.locator("button.act-ack")).to_have_text("Acknowledge")


def test_the_queue_updates_itself_without_a_reload(page: Page, served: tuple[Desk, str]) -> None:
    d, _ = served
    seed(d)
    page.goto("/")
    page.evaluate("window.__still_here = 42")
    expect(page.locator("tbody tr[data-ticket]")).to_have_count(5)
    new = d.desk.create(device="ups-2", site="hq", title="UPS on battery", actor="phone",
                        priority="P1")["id"]
    expect(page.locator(f"tr[data-ticket='{new}']")).to_contain_text("UPS on battery")
    d.desk.act(new, "ack", "eli")
    expect(page.locator(f"tr[data-ticket='{new}']")).to_contain_text("acknowledged")
    assert page.evaluate("window.__still_here") == 42  # the same document: no reload


def test_html_in_data_is_shown_as_text(page: Page, served: tuple[Desk, str]) -> None:
    d, _ = served
    dialogs: list[str] = []
    page.on("dialog", lambda dlg: (dialogs.append(dlg.message), dlg.dismiss()))
    evil_dev = '<img src=x onerror="window.__xss=1">'
    evil_title = "<script>window.__xss=2</script><svg onload=window.__xss=3>"
    d.device("hq", evil_dev, {"type": "<b onmouseover=alert(1)>x</b>"})
    tid = d.fire("disk_nearly_full", "hq", evil_dev, 95.0, evil_title,
                 mount="<iframe src=javascript:alert(4)>")
    d.history.add("hq", evil_dev, "disk.used_percent", [(d.clock.now() - 60, 95.0)],
                  mount='"><script>window.__xss=5</script>')
    man = d.desk.create(device=evil_dev, site="<i>s</i>", title=evil_title, actor="ada",
                        customer="<a href=javascript:alert(6)>c</a>")["id"]
    for path in ["/", f"/tickets/{tid}", f"/tickets/{man}", "/?q=%3Cscript%3E"]:
        page.goto(path)
        assert page.evaluate("window.__xss") is None, path
        assert page.locator("img[src='x'], iframe, [onerror], [onload], [onmouseover], "
                            "a[href^='javascript']").count() == 0, path
        assert page.locator("script").count() == 1, path  # our own desk.js only
    expect(page.locator("tbody")).to_contain_text(evil_title)  # the search found it, as text
    page.goto(f"/tickets/{tid}")
    page.click("#head a.device-link")
    expect(page.locator("h1.device-name")).to_have_text(f"hq/{evil_dev}")
    expect(page.locator("#inventory")).to_contain_text("<b onmouseover=alert(1)>x</b>")
    page.hover("figure[data-metric='disk.used_percent'] svg")
    assert page.evaluate("window.__xss") is None and dialogs == []


def test_kpis_and_the_printable_monthly_report(page: Page, served: tuple[Desk, str]) -> None:
    d, _ = served
    ids = seed(d)
    causes = ["fan bearing worn", "fan bearing worn", "log rotation stopped", "PSU failed"]
    for tid, cause in zip(list(ids.values())[:4], causes, strict=True):
        d.desk.act(tid, "ack", "eli")
        d.desk.act(tid, "resolve", "eli", note=Resolution(cause=cause, fix="fixed it",
                                                          parts=["fan"] if "fan" in cause
                                                          else []))
    d.desk.act(ids["web-01"], "close", "ada", reason="fixed", satisfaction=4)
    page.goto("/kpi?period=7d")
    expect(page.locator("svg.chart.bars")).to_have_count(4)
    assert page.locator("svg.chart.bars rect.bar").count() >= 5
    expect(page.locator("svg.chart.bars").nth(3).locator("title").nth(1)).to_contain_text(
        "fan bearing worn")
    shot(page, "kpi")
    page.goto("/report?month=2027-03")
    expect(page.locator("article.report h1")).to_have_text("Service report 2027-03")
    expect(page.locator("article.report")).to_contain_text("fan bearing worn")
    page.emulate_media(media="print")
    expect(page.locator("header.top")).to_be_hidden()
    shot(page, "report-print")

"""Logging in with a real browser: Debian's headless Chromium, driven by Playwright, against
the desk app on 127.0.0.1 — the cookie it keeps, what each user sees and may do from the
page, and a page of another origin that tries to make the logged-in browser act."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fieldwatch.collector.web.api.app import HttpServer
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from tests.web.conftest import SITE_A, WebDesk, password_of

ACT = """async ([path, body]) => {
    const me = await (await fetch("/api/v1/me")).json();
    const r = await fetch(path, {method: "POST", body: JSON.stringify(body), headers: {
        "Content-Type": "application/json", "X-CSRF-Token": me.csrf_token}});
    return r.status;
}"""


def test_log_in_see_your_site_and_log_out(web: WebDesk, login: Callable[..., Any]) -> None:
    page = login("ana")
    assert page.url == web.url("/")
    text = page.inner_text("body")
    assert "noisy plant-a" in text and "noisy plant-b" not in text
    [cookie] = [c for c in page.context.cookies() if c["name"] == "fieldwatch_session"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax" and cookie["path"] == "/"
    assert page.evaluate("document.cookie").find("fieldwatch_session") == -1  # not for scripts
    status = page.evaluate("""async () => {
        const me = await (await fetch("/api/v1/me")).json();
        return (await fetch("/logout", {method: "POST",
                                        headers: {"X-CSRF-Token": me.csrf_token}})).status;
    }""")
    assert status == 200  # fetch followed the 303 to /login
    page.goto("/")
    assert page.url == web.url("/login?next=/")


def test_a_page_asked_for_before_login_opens_after_it(web: WebDesk, browser: Any) -> None:
    ctx = browser.new_context(base_url=web.base)
    try:
        page = ctx.new_page()
        page.goto("/api/v1/me")
        assert page.url == web.url("/api/v1/me")  # the API answers 401, it does not redirect
        page.goto("/?x=1")
        assert page.url == web.url("/login?next=/%3Fx%3D1")
        page.fill("input[name=name]", "bo")
        page.fill("input[name=password]", "not it")
        with page.expect_navigation():
            page.click("button[type=submit]")
        assert page.inner_text("[role=alert]") == "Wrong name or password."
        assert page.input_value("input[name=name]") == "bo"  # kept; the password is not
        page.fill("input[name=password]", password_of("bo"))
        with page.expect_navigation():
            page.click("button[type=submit]")
        assert page.url == web.url("/?x=1")
        assert "noisy plant-b" in page.inner_text("body")
    finally:
        ctx.close()


def test_roles_and_sites_hold_from_the_browser(web: WebDesk,
                                               login: Callable[..., Any]) -> None:
    a, b = web.tickets[SITE_A], web.tickets["plant-b"]
    ack = (f"/api/v1/tickets/{a}/ack", {})
    assert login("vic").evaluate(ACT, list(ack)) == 403  # a viewer cannot act
    assert login("bo").evaluate(ACT, list(ack)) == 404  # site A does not exist for bo
    ana = login("ana")
    assert ana.evaluate(ACT, [f"/api/v1/tickets/{b}/ack", {}]) == 404
    assert ana.evaluate(ACT, list(ack)) == 200
    no_token = """async (path) => (await fetch(path, {method: "POST", body: '{"text": "x"}',
                                   headers: {"Content-Type": "application/json"}})).status"""
    assert ana.evaluate(no_token, f"/api/v1/tickets/{a}/comment") == 403  # no CSRF token
    timeline = web.desk.show(a)["timeline"]
    assert [(e["kind"], e["actor"]) for e in timeline][-1] == ("acknowledged", "ana")


def test_a_form_with_the_token_works_and_the_language_is_kept(
        web: WebDesk, login: Callable[..., Any]) -> None:
    page = login("ana")
    with page.expect_navigation(url=web.url("/?done=1")):
        page.evaluate("""async () => {
        const me = await (await fetch("/api/v1/me")).json();
        const f = document.createElement("form");
        f.method = "post"; f.action = "/account/language";
        for (const [k, v] of [["language", "zh"], ["csrf", me.csrf_token], ["next", "/?done=1"]]) {
            const i = document.createElement("input");
            i.name = k; i.value = v; f.appendChild(i);
        }
        document.body.appendChild(f);
        f.submit();
    }""")
    assert web.accounts.user("ana").language == "zh"  # type: ignore[union-attr]


def test_the_login_page_in_chinese(web: WebDesk, browser: Any) -> None:
    ctx = browser.new_context(base_url=web.base, locale="zh-CN")
    try:
        page = ctx.new_page()
        page.goto("/login")
        assert page.inner_text("h1") == "fieldwatch — 登录"
        page.fill("input[name=name]", "li")
        page.fill("input[name=password]", password_of("li"))
        with page.expect_navigation():
            page.click("button[type=submit]")
        assert page.evaluate("async () => (await (await fetch('/api/v1/me')).json()).language"
                             ) == "zh"
    finally:
        ctx.close()


EVIL = """<!doctype html><title>win a prize</title>
<form id=f method=post action="{desk}/account/language">
<input name=language value=zh><input name=csrf value=guessed></form>
<script>
fetch("{desk}/api/v1/tickets/{ticket}/comment", {{method: "POST", mode: "no-cors",
      credentials: "include", headers: {{"Content-Type": "text/plain"}},
      body: '{{"text": "pwned"}}'}})
  .catch(() => null).finally(() => document.getElementById("f").submit());
</script>"""


@pytest.fixture
def evil(web: WebDesk) -> Iterator[str]:
    """Another origin's page (same host, another port) that posts to the desk."""
    async def prize(request: Request) -> HTMLResponse:
        return HTMLResponse(EVIL.format(desk=web.base, ticket=web.tickets[SITE_A]))

    server = HttpServer(Starlette(routes=[Route("/", prize)]), port=0)
    server.start()
    yield f"http://127.0.0.1:{server.port}/"
    server.stop()


def test_another_sites_page_cannot_make_the_browser_act(
        web: WebDesk, login: Callable[..., Any], evil: str) -> None:
    page = login("ana")
    before = web.desk.show(web.tickets[SITE_A])["timeline"]
    with page.expect_navigation(url=web.url("/account/language")):
        page.goto(evil)
    assert "cross-origin requests are refused" in page.inner_text("body")
    assert web.accounts.user("ana").language == "en"  # type: ignore[union-attr]
    assert web.desk.show(web.tickets[SITE_A])["timeline"] == before
    assert web.stats.get("http_refused_total", "cross_origin") >= 1
    page.goto("/")
    assert page.url == web.url("/")  # still logged in: nothing was done in ana's name


def test_the_icon_loads_and_nothing_the_pages_ask_for_is_missing(
        web: WebDesk, browser: Any) -> None:
    """The browser's own network log and console, from the login form through the queue and a
    ticket to an error page: the linked icon arrives, /favicon.ico leads to it, and the only
    4xx is the page asked for on purpose."""
    ctx = browser.new_context(base_url=web.base, locale="en-US")
    try:
        page = ctx.new_page()
        answers: list[tuple[int, str, str]] = []
        errors: list[str] = []
        page.on("response", lambda r: answers.append(
            (r.status, r.url.removeprefix(web.base), r.headers.get("content-type", ""))))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)

        def icon(r: Any) -> bool:
            return r.url == web.url("/static/favicon.svg")

        with page.expect_response(icon) as first:
            page.goto("/login")
        assert first.value.status == 200
        page.fill("input[name=name]", "ana")
        page.fill("input[name=password]", password_of("ana"))
        with page.expect_navigation():
            page.click("button[type=submit]")
        for path in ["/", f"/tickets/{web.tickets[SITE_A]}", "/tickets/999999"]:
            page.goto(path)
            page.wait_for_load_state("load")
            href = page.eval_on_selector("link[rel=icon]", "l => l.href")
            assert href == web.url("/static/favicon.svg"), path
        ico = page.goto("/favicon.ico")
        assert ico is not None and ico.request.redirected_from is not None
        assert ico.request.redirected_from.url == web.url("/favicon.ico")
        assert (ico.status, ico.url) == (200, web.url("/static/favicon.svg"))
    finally:
        ctx.close()
    assert (200, "/static/favicon.svg", "image/svg+xml") in answers
    assert [(s, p) for s, p, _ in answers if s >= 400] == [(404, "/tickets/999999")]
    assert len(errors) == 1 and "404" in errors[0], errors  # the error page's own status

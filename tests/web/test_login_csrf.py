"""Logging in and out, and CSRF, over real HTTP with a cookie-keeping client (the browser
tests do the same in Chromium): a state change without the token, with another session's
token, or from another site is refused; forms go to pages, never to the JSON API."""

from __future__ import annotations

import re

import httpx
import pytest
from fieldwatch.collector.web.accounts.routes import browser_language, safe_next
from fieldwatch.collector.web.api.guard import check

from tests.web.conftest import SITE_A, WebDesk, password_of

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def form_token(page: str) -> str:
    m = re.search(r"name=csrf value='([^']+)'", page)
    assert m, page[:500]
    return m.group(1)


def logged_in(web: WebDesk, name: str) -> tuple[httpx.Client, str]:
    """A client holding `name`'s session cookie, and the session's CSRF token."""
    c = web.anonymous()
    token = form_token(c.get("/login").text)
    r = c.post("/login", data={"name": name, "password": password_of(name), "csrf": token,
                               "next": "/"})
    assert r.status_code == 303 and r.headers["location"] == "/", r.text
    me = c.get("/api/v1/me").json()
    assert me["name"] == name
    return c, me["csrf_token"]


def test_login_sets_a_session_cookie_and_logout_ends_it(web: WebDesk) -> None:
    c = web.anonymous()
    assert c.get("/").status_code == 303  # the front page wants a login
    assert c.get("/").headers["location"] == "/login?next=/"
    page = c.get("/login?next=/api/v1/me")
    assert page.status_code == 200 and "no-store" in page.headers["cache-control"]
    anon = page.headers["set-cookie"]
    assert anon.startswith("fieldwatch_csrf=") and "HttpOnly" in anon and "SameSite=Lax" in anon
    r = c.post("/login", data={"name": "ana", "password": password_of("ana"),
                               "csrf": form_token(page.text), "next": "/api/v1/me"})
    assert (r.status_code, r.headers["location"]) == (303, "/api/v1/me")
    session = r.headers["set-cookie"]
    assert session.startswith("fieldwatch_session=") and "HttpOnly" in session
    assert "SameSite=Lax" in session and "Max-Age=43200" in session
    assert "Secure" not in session  # plain HTTP on loopback; over TLS it is (test_tls)
    me = c.get("/api/v1/me").json()
    assert (me["name"], me["sites"]) == ("ana", [SITE_A])
    assert c.get("/").status_code == 200 and "noisy plant-a" in c.get("/").text
    assert "noisy plant-b" not in c.get("/").text
    assert web.stats.get("desk_logins_total", "ok") == 1
    r = c.post("/logout", data={"csrf": me["csrf_token"]})
    assert (r.status_code, r.headers["location"]) == (303, "/login")
    assert c.get("/api/v1/me").status_code == 401


def test_a_wrong_password_or_unknown_name_is_one_answer(web: WebDesk) -> None:
    c = web.anonymous()
    token = form_token(c.get("/login").text)
    for name, pw in (("ana", "wrong password"), ("nobody", "wrong password"), ("ana", "")):
        r = c.post("/login", data={"name": name, "password": pw, "csrf": token})
        assert r.status_code == 401 and "Wrong name or password." in r.text
        assert "fieldwatch_session" not in r.headers.get("set-cookie", "")
    assert web.stats.get("desk_logins_total", "failed") == 3


def test_too_many_failures_from_one_address_wait(web: WebDesk) -> None:
    c = web.anonymous()
    token = form_token(c.get("/login").text)
    for _ in range(10):
        assert c.post("/login", data={"name": "ana", "password": "guess", "csrf": token}
                      ).status_code == 401
    r = c.post("/login", data={"name": "ana", "password": password_of("ana"), "csrf": token})
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
    web.clock.advance(601)
    assert c.post("/login", data={"name": "ana", "password": password_of("ana"),
                                  "csrf": token}).status_code == 303


def test_a_login_form_without_the_token_is_refused(web: WebDesk) -> None:
    c = web.anonymous()
    token = form_token(c.get("/login").text)
    creds = {"name": "ana", "password": password_of("ana")}
    assert c.post("/login", data=creds).status_code == 403
    assert c.post("/login", data={**creds, "csrf": token + "x"}).status_code == 403
    fresh = web.anonymous()  # the token without its cookie: a forged form elsewhere
    assert fresh.post("/login", data={**creds, "csrf": token}).status_code == 403
    assert web.stats.get("http_refused_total", "csrf") == 3
    assert c.post("/login", data={**creds, "csrf": token}).status_code == 303


def test_session_writes_need_the_sessions_token(web: WebDesk) -> None:
    a = web.tickets[SITE_A]
    ana, token = logged_in(web, "ana")
    li, li_token = logged_in(web, "li")
    path = f"/api/v1/tickets/{a}/comment"
    assert ana.post(path, json={"text": "x"}).status_code == 403
    assert ana.post(path, json={"text": "x"}, headers={"X-CSRF-Token": li_token}
                    ).status_code == 403  # another session's token
    assert ana.post(path, json={"text": "x"}, headers={"X-CSRF-Token": token}
                    ).status_code == 200
    assert ana.post("/logout", data={}).status_code == 403  # a form needs it too
    assert ana.get("/api/v1/me").status_code == 200  # still logged in
    assert [e["actor"] for e in web.desk.show(a)["timeline"] if e["kind"] == "comment"] == [
        "ana"]
    # a bearer token needs no CSRF token: browsers never send one by themselves
    assert web.api("ana").post(path, json={"text": "y"}).status_code == 200


def test_writes_from_another_site_are_refused(web: WebDesk) -> None:
    ana, token = logged_in(web, "ana")
    a = web.tickets[SITE_A]
    for evil in ({"Origin": "http://evil.example"}, {"Sec-Fetch-Site": "cross-site"},
                 {"Origin": "null"}, {"Sec-Fetch-Site": "same-site"}):
        r = ana.post(f"/api/v1/tickets/{a}/comment", json={"text": "x"},
                     headers={"X-CSRF-Token": token, **evil})
        assert r.status_code == 403 and "cross-origin" in r.json()["detail"], evil
        r = ana.post("/logout", data={"csrf": token}, headers=evil)
        assert r.status_code == 403, evil
    assert ana.get("/api/v1/me").status_code == 200


def test_forms_go_to_pages_not_to_the_api(web: WebDesk) -> None:
    ana, token = logged_in(web, "ana")
    r = ana.post(f"/api/v1/tickets/{web.tickets[SITE_A]}/comment",
                 data={"text": "x", "csrf": token})
    assert r.status_code == 415
    r = ana.post("/logout", content=b'{"csrf": "x"}', headers={"Content-Type": "text/plain"})
    assert r.status_code == 415
    r = ana.post("/account/language", content=b"csrf=%ff%fe&language=zh", headers=FORM)
    assert r.status_code == 400  # not UTF-8
    r = ana.post("/account/language", content=b"&".join([b"a=1"] * 300) + b"&csrf=" +
                 token.encode(), headers=FORM)
    assert r.status_code == 400


def test_a_user_chooses_their_language(web: WebDesk) -> None:
    ana, token = logged_in(web, "ana")
    r = ana.post("/account/language", data={"language": "zh", "csrf": token, "next": "/x"})
    assert (r.status_code, r.headers["location"]) == (303, "/x")
    assert ana.get("/api/v1/me").json()["language"] == "zh"
    assert web.accounts.user("ana").language == "zh"  # type: ignore[union-attr]
    r = ana.post("/account/language", json={"language": "en"},
                 headers={"X-CSRF-Token": token})
    assert r.json() == {"name": "ana", "language": "en"}
    assert ana.post("/account/language", json={"language": "fr"},
                    headers={"X-CSRF-Token": token}).status_code == 422
    assert web.anonymous().post("/account/language", json={"language": "zh"}
                                ).status_code == 401
    assert web.api().post("/account/language", json={"language": "zh"}).status_code == 409


def test_the_login_page_speaks_the_browsers_language(web: WebDesk) -> None:
    c = web.anonymous()
    zh = c.get("/login", headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8"}).text
    assert "用户名" in zh and 'lang=zh-Hans' in zh
    assert "Password" in c.get("/login", headers={"Accept-Language": "de, en;q=0.5"}).text


@pytest.mark.parametrize(("accept", "lang"), [
    ("", "en"), ("zh", "zh"), ("zh-Hans-CN", "zh"), ("en-GB,zh;q=0.9", "en"),
    ("fr,zh;q=0.5,en;q=0.4", "zh"), ("zh;q=x,en", "en"), ("*", "en"),
])
def test_browser_language(accept: str, lang: str) -> None:
    assert browser_language(accept) == lang


@pytest.mark.parametrize(("target", "safe"), [
    ("/tickets/4?x=1", "/tickets/4?x=1"), (None, "/"), ("", "/"),
    ("https://evil.example/", "/"), ("//evil.example/x", "/"), ("/\\evil.example", "/"),
    ("/x\r\nSet-Cookie: a=b", "/"), ("javascript:alert(1)", "/"),
])
def test_after_login_only_local_paths(target: str | None, safe: str) -> None:
    assert safe_next(target) == safe


def test_the_guard_takes_forms_only_where_told() -> None:
    form = {"content-length": "5", "content-type": "application/x-www-form-urlencoded"}
    assert check("POST", form, 100, forms=True) is None
    assert check("POST", form, 100).status == 415  # type: ignore[union-attr]
    multipart = {"content-length": "5", "content-type": "multipart/form-data; boundary=x"}
    assert check("POST", multipart, 100, forms=True).status == 415  # type: ignore[union-attr]
    evil = {**form, "origin": "http://evil.example", "host": "127.0.0.1:8080"}
    assert check("POST", evil, 100, forms=True).status == 403  # type: ignore[union-attr]

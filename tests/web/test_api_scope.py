"""Roles and site scopes through the API, on a real server: a viewer cannot act, a user of
site A neither sees nor acts on site B (404, as if it did not exist), and every action is
recorded under the caller — never a name from the request body."""

from __future__ import annotations

import sqlalchemy as sa
from fieldwatch.collector.store.schema import devices

from tests.web.conftest import SITE_A, SITE_B, WebDesk


def _devices(web: WebDesk) -> None:
    with web.desk.store.engine.begin() as conn:
        for site, device in ((SITE_A, "pump-a"), (SITE_B, "pump-b")):
            conn.execute(devices.insert().values(site=site, device=device, first_seen=1.0,
                                                 last_seen=2.0))


def test_a_user_sees_only_their_sites(web: WebDesk) -> None:
    _devices(web)
    a, b = web.tickets[SITE_A], web.tickets[SITE_B]
    ana, bo, root, sue = web.api("ana"), web.api("bo"), web.api("root"), web.api("sue")
    assert [t["id"] for t in ana.get("/api/v1/tickets").json()] == [a]
    assert [t["id"] for t in bo.get("/api/v1/tickets").json()] == [b]
    assert ana.get("/api/v1/tickets", params={"site": SITE_B}).json() == []
    for everyone in (root, sue, web.api()):
        assert {t["id"] for t in everyone.get("/api/v1/tickets").json()} == {a, b}
    # another site's ticket answers exactly as a ticket that does not exist
    assert ana.get(f"/api/v1/tickets/{a}").status_code == 200
    hidden, missing = ana.get(f"/api/v1/tickets/{b}"), ana.get("/api/v1/tickets/99999")
    assert (hidden.status_code, hidden.json()["detail"]) == (404, f"no ticket {b}")
    assert missing.status_code == 404
    assert ana.get(f"/api/v1/tickets/{b}/diagnostics").status_code == 404
    assert [d["device"] for d in ana.get("/api/v1/devices").json()] == ["pump-a"]
    assert [d["device"] for d in root.get("/api/v1/devices").json()] == ["pump-a", "pump-b"]
    assert ana.get("/api/v1/devices/pump-a/history").status_code == 200
    for params in ({}, {"site": SITE_B}):
        r = ana.get("/api/v1/devices/pump-b/history", params=params)
        assert r.status_code == 404 and "no device" in r.json()["detail"]
    assert ana.get("/api/v1/devices/pump-b/history").json() == bo.get(
        "/api/v1/devices/nothing/history").json() | {"detail": "no device pump-b is known"}
    web.clock.advance(60)
    assert ana.get("/api/v1/kpi").json()["tickets"]["opened"] == 1
    assert root.get("/api/v1/kpi").json()["tickets"]["opened"] == 2
    me = ana.get("/api/v1/me").json()
    assert me == {"name": "ana", "role": "engineer", "sites": [SITE_A], "language": "en"}
    assert web.api().get("/api/v1/me").json()["name"] == "api-token"  # the shared token


def test_a_viewer_cannot_act_and_nobody_acts_on_an_unseen_site(web: WebDesk) -> None:
    a, b = web.tickets[SITE_A], web.tickets[SITE_B]
    vic, ana = web.api("vic"), web.api("ana")
    before = web.desk.show(b)["timeline"]
    for path, body in ((f"/api/v1/tickets/{a}/ack", {}),
                       (f"/api/v1/tickets/{a}/comment", {"text": "hello"}),
                       ("/api/v1/tickets", {"device": "d", "site": SITE_A, "title": "t"}),
                       (f"/api/v1/tickets/{a}/approvals", {"action": "restart_service"}),
                       ("/api/v1/silences", {"matchers": {"site": SITE_A}, "duration": "1h",
                                             "reason": "r"})):
        r = vic.post(path, json=body)
        assert r.status_code == 403, (path, r.text)
    assert "vic is a viewer" in vic.post(f"/api/v1/tickets/{a}/ack", json={}).json()["detail"]
    # site B: 404 before any role question, for reads and writes alike
    for path, body in ((f"/api/v1/tickets/{b}/ack", {}),
                       (f"/api/v1/tickets/{b}/comment", {"text": "hello"}),
                       (f"/api/v1/tickets/{b}/approvals", {"action": "restart_service"})):
        assert ana.post(path, json=body).status_code == 404, path
        assert vic.post(path, json=body).status_code == 404, path
    r = ana.post("/api/v1/tickets", json={"device": "d", "site": SITE_B, "title": "t"})
    assert r.status_code == 403 and "no access to site 'plant-b'" in r.json()["detail"]
    assert ana.post(f"/api/v1/tickets/{a}/approvals", json={
        "action": "restart_service"}).status_code == 403  # engineers do not approve
    assert web.desk.show(b)["timeline"] == before  # nothing happened on B


def test_every_action_is_recorded_under_the_caller(web: WebDesk) -> None:
    a, b = web.tickets[SITE_A], web.tickets[SITE_B]
    ana, sue = web.api("ana"), web.api("sue")
    assert ana.post(f"/api/v1/tickets/{a}/ack", json={}).status_code == 200
    r = ana.post(f"/api/v1/tickets/{a}/comment", json={"text": "on it", "by": "dana"})
    assert r.status_code == 422 and "`by` is not taken" in r.text
    assert ana.post(f"/api/v1/tickets/{a}/comment", json={"text": "on it"}).status_code == 200
    made = ana.post("/api/v1/tickets", json={"device": "pump-9", "site": SITE_A,
                                             "title": "phoned in"})
    assert made.status_code == 201
    assert sue.post(f"/api/v1/tickets/{b}/approvals", json={
        "action": "restart_service", "on_behalf_of": "ACME"}).status_code == 201
    actors = [(e["kind"], e["actor"]) for e in web.desk.show(a)["timeline"]]
    assert actors[-2:] == [("acknowledged", "ana"), ("comment", "ana")]
    assert web.desk.show(made.json()["id"])["timeline"][0]["actor"] == "ana"
    approval = [e for e in web.desk.show(b)["timeline"] if e["kind"] == "approval"]
    assert [e["actor"] for e in approval] == ["sue"]


def test_similar_past_cases_come_only_from_seen_sites(web: WebDesk) -> None:
    root = web.api("root")
    b = web.tickets[SITE_B]
    fix = {"note": {"cause": "clogged filter", "fix": "cleaned", "minutes": 10,
                    "mode": "remote"}}
    assert root.post(f"/api/v1/tickets/{b}/resolve", json=fix).status_code == 200
    twin = web.desk.create(device="pump-a", site=SITE_A, title=f"noisy {SITE_B}", actor="x")
    assert [c["id"] for c in root.get(f"/api/v1/tickets/{twin['id']}").json()["similar"]] == [b]
    assert web.api("ana").get(f"/api/v1/tickets/{twin['id']}").json()["similar"] == []


def test_silences_are_scoped_by_their_site_matcher(web: WebDesk) -> None:
    web.accounts.add("sam", "supervisor", "pw-of-sam-long-enough", sites=[SITE_A])
    sue, sam, ana = web.api("sue"), web.api("sam"), web.api("ana")
    body = {"duration": "1h", "reason": "maintenance"}
    on_b = sue.post("/api/v1/silences", json={"matchers": {"site": SITE_B}, **body})
    everywhere = sue.post("/api/v1/silences", json={"matchers": {"rule": "x"}, **body})
    assert on_b.status_code == everywhere.status_code == 201
    assert sam.post("/api/v1/silences", json={"matchers": {"rule": "x"}, **body}
                    ).status_code == 403  # would mute other sites too
    assert sam.post("/api/v1/silences", json={"matchers": {"site": "=~plant-.*"}, **body}
                    ).status_code == 403
    on_a = sam.post("/api/v1/silences", json={"matchers": {"site": SITE_A}, **body})
    assert on_a.status_code == 201
    assert [s["id"] for s in sam.get("/api/v1/silences").json()] == [on_a.json()["id"]]
    assert [s["id"] for s in ana.get("/api/v1/silences").json()] == [on_a.json()["id"]]
    assert len(sue.get("/api/v1/silences").json()) == 3
    assert sam.delete(f"/api/v1/silences/{on_b.json()['id']}").status_code == 404
    assert ana.delete(f"/api/v1/silences/{on_a.json()['id']}").status_code == 403
    assert sam.delete(f"/api/v1/silences/{on_a.json()['id']}").status_code == 200
    [mine] = sue.get("/api/v1/silences", params={"all": 1}).json()[-1:]
    assert mine["author"] == "sam"


def test_the_outbox_is_for_users_who_see_every_site(web: WebDesk) -> None:
    assert web.api("ana").get("/api/v1/outbox").status_code == 403
    assert web.api("sue").get("/api/v1/outbox").status_code == 200
    assert web.api("sue").post("/api/v1/outbox/retry", json={"ids": []}).status_code == 200
    web.accounts.add("eve", "engineer", sites=["*"])
    assert web.api("eve").post("/api/v1/outbox/retry", json={"ids": []}).status_code == 403


def test_no_or_a_wrong_token_is_401(web: WebDesk) -> None:
    anon = web.anonymous()
    for path in ("/api/v1/tickets", "/api/v1/me", "/api/v1/silences", "/api/v1/outbox",
                 f"/api/v1/tickets/{web.tickets[SITE_A]}/diagnostics"):
        assert anon.get(path).status_code == 401, path
        assert anon.get(path, headers={"Authorization": "Bearer fwu_nope"}).status_code == 401
    token = web.accounts.new_token("ana")
    web.accounts.revoke_tokens("ana")
    assert anon.get("/api/v1/tickets", headers={"Authorization": f"Bearer {token}"}
                    ).status_code == 401
    assert web.stats.get("api_auth_failures_total") >= 2
    with web.desk.store.engine.connect() as conn:  # the shared token is no stored user
        assert conn.execute(sa.text("SELECT count(*) FROM desk_users WHERE name='api-token'")
                            ).scalar_one() == 0

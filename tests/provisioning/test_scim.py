"""SCIM 2.0 service provider: scim2-tester against the real server, plus isolation, minimisation, filters, PATCH.

The directory and apps are the OneRoster tests' world (real importer, real
provisioning consumer, real token endpoint). scim2-tester (third party)
judges the protocol against the API served as `relais serve provisioning-api` serves it
(relais/ops/server.py) on a free port.
"""

from __future__ import annotations

import pytest

from relais.ops.server import WsgiServer
from services.provisioning.api import wsgi
from tests.provisioning.test_oneroster import token, world  # noqa: F401  (world: a fixture, used by `scim`)


@pytest.fixture
def scim(world):  # noqa: F811
    """The OneRoster tests' world: S1/S2 directory, maths/quiz/empty/scim apps with their secrets."""
    return world

CT = "application/scim+json"
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def call(w, app_id, method, path, body=None, **kw):
    headers = {"Authorization": f"Bearer {token(w, app_id)}", **kw.pop("headers", {})}
    if isinstance(body, (dict, list)):
        kw["json"] = body
    elif body is not None:
        kw["data"] = body
    return w.client.open("/scim/v2" + path, method=method, headers=headers, content_type=CT, **kw)


def test_scim2_tester_passes_against_the_running_server(scim):
    httpx2 = pytest.importorskip("httpx2")
    from scim2_client.engines.httpx2 import SyncSCIMClient
    from scim2_tester import check_server
    from scim2_tester.utils import Status

    server = WsgiServer(wsgi.make_app(scim.engine), "127.0.0.1", 0, what="the provisioning API", where="tests")
    try:
        base = f"http://127.0.0.1:{server.port}"
        resp = httpx2.post(f"{base}/oauth/token", data={"grant_type": "client_credentials", "scope": "scim"},
                           auth=("scim-app", scim.secrets["scim-app"]))
        assert resp.status_code == 200, resp.text
        http = httpx2.Client(base_url=f"{base}/scim/v2",
                             headers={"Authorization": f"Bearer {resp.json()['access_token']}"})
        results = check_server(SyncSCIMClient(http), resource_types=["User", "Group"])
    finally:
        server.stop()
    failed = [f"{r.title}: {r.reason}" for r in results if r.status == Status.ERROR]
    assert results and not failed, "\n".join(failed)
    passed = {r.title for r in results if r.status == Status.SUCCESS}
    # the CRUD and PATCH checks really ran on both resource types (not skipped for lack of discovery)
    assert {"object_creation", "object_query", "object_replacement", "object_deletion"} <= passed, sorted(passed)
    assert any("patch" in title or "attribute" in title for title in passed), sorted(passed)


def test_discovery_is_honest(scim):
    spc = call(scim, "scim-app", "GET", "/ServiceProviderConfig")
    assert spc.status_code == 200 and spc.mimetype == CT
    body = spc.get_json()
    assert body["patch"]["supported"] and not body["bulk"]["supported"] and not body["sort"]["supported"]
    assert body["filter"] == {"supported": True, "maxResults": 200}
    names = {r["id"] for r in call(scim, "scim-app", "GET", "/ResourceTypes").get_json()["Resources"]}
    assert names == {"User", "Group"}
    assert call(scim, "scim-app", "GET", f"/Schemas/{USER}").get_json()["name"] == "User"


def test_directory_users_are_entitled_and_minimised(scim):
    maths = call(scim, "maths-app", "GET", "/Users").get_json()
    quiz = call(scim, "quiz-app", "GET", "/Users").get_json()
    empty = call(scim, "empty-app", "GET", "/Users").get_json()
    maths_ids = {u["id"] for u in maths["Resources"]}
    quiz_ids = {u["id"] for u in quiz["Resources"]}
    assert maths_ids and quiz_ids and maths_ids != quiz_ids
    assert empty["totalResults"] == 0
    assert any(u.get("name") for u in maths["Resources"])  # maths may receive names
    for u in quiz["Resources"]:  # quiz: the opaque id alone
        assert set(u) == {"schemas", "id", "userName", "active", "meta"}, u
    outside = next(iter(maths_ids - quiz_ids))
    assert call(scim, "quiz-app", "GET", f"/Users/{outside}").status_code == 404


def test_directory_resources_are_read_only(scim):
    uid = call(scim, "maths-app", "GET", "/Users").get_json()["Resources"][0]["id"]
    for method, body in (("PUT", {"schemas": [USER], "userName": "x"}), ("DELETE", None),
                         ("PATCH", {"schemas": [PATCH], "Operations": [{"op": "replace", "path": "active",
                                                                       "value": False}]})):
        resp = call(scim, "maths-app", method, f"/Users/{uid}", body)
        assert resp.status_code == 400 and resp.get_json()["scimType"] == "mutability", method
    groups = call(scim, "maths-app", "GET", "/Groups").get_json()["Resources"]
    assert groups and all(m["value"] for g in groups for m in g["members"])


def test_local_resources_are_per_app_and_patchable(scim):
    created = call(scim, "maths-app", "POST", "/Users", {"schemas": [USER], "userName": "Bob",
                                                          "emails": [{"value": "b@x.fr", "type": "work"}]})
    assert created.status_code == 201, created.get_data(as_text=True)
    uid, etag = created.get_json()["id"], created.headers["ETag"]
    assert created.headers["Location"].endswith(f"/scim/v2/Users/{uid}")
    assert call(scim, "quiz-app", "GET", f"/Users/{uid}").status_code == 404
    assert call(scim, "quiz-app", "DELETE", f"/Users/{uid}").status_code == 404
    listed = call(scim, "quiz-app", "GET", "/Users", query_string={"filter": 'userName eq "bob"'}).get_json()
    assert listed["totalResults"] == 0  # nor through a list or a filter
    dup = call(scim, "maths-app", "POST", "/Users", {"schemas": [USER], "userName": "bob"})
    assert dup.status_code == 409 and dup.get_json()["scimType"] == "uniqueness"
    group = call(scim, "maths-app", "POST", "/Groups", {"schemas": [GROUP], "displayName": "Club",
                                                         "members": [{"value": uid}]}).get_json()
    patched = call(scim, "maths-app", "PATCH", f"/Users/{uid}", {"schemas": [PATCH], "Operations": [
        {"op": "replace", "path": 'emails[type eq "work"].value', "value": "bob@x.fr"},
        {"op": "add", "path": "name.givenName", "value": "Bob"},
        {"op": "add", "value": {"displayName": "Bobby"}}]}, headers={"If-Match": etag})
    assert patched.status_code == 200, patched.get_data(as_text=True)
    body = patched.get_json()
    assert body["emails"][0]["value"] == "bob@x.fr" and body["name"]["givenName"] == "Bob"
    assert body["displayName"] == "Bobby" and patched.headers["ETag"] != etag
    stale = call(scim, "maths-app", "PUT", f"/Users/{uid}", {"schemas": [USER], "userName": "Bob"},
                 headers={"If-Match": etag})
    assert stale.status_code == 412
    quiz_groups = call(scim, "quiz-app", "GET", "/Groups").get_json()["Resources"]
    assert all(g["id"] != group["id"] for g in quiz_groups)
    removed = call(scim, "maths-app", "PATCH", f"/Groups/{group['id']}", {"schemas": [PATCH], "Operations": [
        {"op": "remove", "path": f'members[value eq "{uid}"]'}]})
    assert removed.get_json()["members"] == []
    assert call(scim, "maths-app", "DELETE", f"/Users/{uid}").status_code == 204
    assert call(scim, "maths-app", "GET", f"/Users/{uid}").status_code == 404


def test_filters_pagination_and_projection(scim):
    for name in ("alice", "alfred", "zoe"):
        call(scim, "quiz-app", "POST", "/Users", {"schemas": [USER], "userName": name, "active": name != "zoe"})
    got = call(scim, "quiz-app", "GET", "/Users", query_string={"filter": 'userName sw "AL" and active eq true'})
    assert sorted(u["userName"] for u in got.get_json()["Resources"]) == ["alfred", "alice"]
    got = call(scim, "quiz-app", "GET", "/Users",
               query_string={"filter": 'not (userName co "l") or userName eq "alice"'}).get_json()
    names = {u["userName"] for u in got["Resources"]}
    assert "zoe" in names and "alfred" not in names
    total = call(scim, "quiz-app", "GET", "/Users").get_json()["totalResults"]
    page = call(scim, "quiz-app", "GET", "/Users", query_string={"startIndex": 2, "count": 2}).get_json()
    assert page["totalResults"] == total and page["startIndex"] == 2 and page["itemsPerPage"] == min(2, total - 1)
    proj = call(scim, "quiz-app", "GET", "/Users", query_string={"attributes": "userName"}).get_json()
    assert all(set(u) <= {"schemas", "id", "userName"} for u in proj["Resources"])
    search = call(scim, "quiz-app", "POST", "/Users/.search", {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "filter": 'userName ew "oe"'})
    assert [u["userName"] for u in search.get_json()["Resources"]] == ["zoe"]


@pytest.mark.parametrize("path,body,status,scim_type", [
    ("/Users?filter=userName%20eq", None, 400, "invalidFilter"),
    ("/Users?filter=userName%20zz%20%22a%22", None, 400, "invalidFilter"),
    ("/Users/nope", None, 404, None),
    ("/Users", b"{not json", 400, "invalidSyntax"),
    ("/Users", {"schemas": [USER]}, 400, "invalidValue"),
    ("/Groups", {"schemas": [GROUP], "displayName": "g", "members": [{"value": "ghost"}]}, 400, "invalidValue"),
])
def test_bad_input(scim, path, body, status, scim_type):
    method = "GET" if body is None else "POST"
    resp = call(scim, "quiz-app", method, path, body)
    assert resp.status_code == status
    err = resp.get_json()
    assert err["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"] and err["status"] == str(status)
    assert err.get("scimType") == scim_type and err["detail"]

"""The provisioning API holds to its OpenAPI 3.1 description, contracts/openapi.yaml, served at /openapi.json.

- the document is valid OpenAPI 3.1 (openapi-spec-validator, the official 3.1 schema);
- the paths and methods the app serves are those the document names, no more, no fewer;
- real requests against the running server (relais/ops/server.py on a free port, the OneRoster
  tests' world) answer as the document says: status, content type, headers, body schema
  (Schemathesis' own conformance checks);
- Schemathesis generates requests from the document, valid and invalid, for every operation, and
  sends them with a real token: never a server error, every answer conforms, invalid input answers
  4xx with an error body that says what is wrong, a token is needed wherever the document says so
  (ignored_auth), and a method not described answers 405 (unsupported_method). `RELAIS_FUZZ_EXAMPLES`
  (default 6) bounds the examples per operation and mode; the run is derandomized, so CI runs the same
  requests each time
  (`RELAIS_FUZZ_RANDOM=1` explores new ones). Schemathesis keeps control characters out of paths,
  so NUL in ids and filters is tested apart (test_nul_characters_answer_400_naming_where).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import requests
import schemathesis
import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from openapi_spec_validator import validate
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError as OpenApiError
from openapi_spec_validator.validation.validators import OpenAPIV31SpecValidator
from schemathesis import checks as st_checks
from schemathesis import errors as st_errors

from relais.ops.server import WsgiServer
from services.provisioning.api import wsgi
from tests.provisioning.test_oneroster import ROOT, U1, world  # noqa: F401  (world: a fixture)

DOCUMENT = Path(__file__).resolve().parents[2] / "contracts" / "openapi.yaml"
METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
SCIM_USER = "urn:ietf:params:scim:schemas:core:2.0:User"
SCIM_GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
SEARCH = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
CONFORMANCE = [st_checks.status_code_conformance, st_checks.content_type_conformance,
               st_checks.response_headers_conformance, st_checks.response_schema_conformance]


def _document() -> dict:
    return yaml.safe_load(DOCUMENT.read_text(encoding="utf-8"))


@schemathesis.check
def error_says_what(ctx, response, case) -> bool | None:
    """A 4xx answer (but 304) carries a JSON error whose description is a sentence, not an empty shell."""
    if not 400 <= response.status_code < 500:
        return None
    body = response.json()
    said = body.get("error_description") or body.get("imsx_description") or body.get("detail")
    assert isinstance(said, str) and len(said.strip()) >= 8, f"a {response.status_code} without a clear error: {body}"
    return True


class Api:
    """The app in the production server on a free port, and real tokens for the world's apps."""

    def __init__(self, world):  # noqa: F811  (the fixture's value)
        self.world = world
        self.server = WsgiServer(wsgi.make_app(world.engine), "127.0.0.1", 0, what="the provisioning API",
                                 where="tests")
        self.base = f"http://127.0.0.1:{self.server.port}"
        self.http = requests.Session()

    def token(self, app_id: str, scope: str | None = None) -> str:
        form = {"grant_type": "client_credentials", **({"scope": scope} if scope else {})}
        resp = self.http.post(f"{self.base}/oauth/token", data=form, auth=(app_id, self.world.secrets[app_id]))
        assert resp.status_code == 200, resp.text
        return resp.json()["access_token"]

    def schema(self):
        """Schemathesis' reading of the document the server serves."""
        return schemathesis.openapi.from_dict(self.http.get(f"{self.base}/openapi.json").json())

    def stop(self) -> None:
        self.http.close()
        self.server.stop()


@pytest.fixture
def api(world):  # noqa: F811
    running = Api(world)
    yield running
    running.stop()


# -- the document ---------------------------------------------------------------------------------

def test_the_document_is_valid_openapi_3_1():
    document = _document()
    assert document["openapi"] == "3.1.0"
    validate(document, cls=OpenAPIV31SpecValidator)  # the official OpenAPI 3.1 schema, and $refs resolved
    ids = [op["operationId"] for item in document["paths"].values() for m, op in item.items() if m in METHODS]
    assert len(ids) == len(set(ids))


def test_a_broken_document_is_caught():
    """The validator above is not a rubber stamp: a response without a description, a path parameter left
    undeclared both fail."""
    document = _document()
    del document["paths"]["/healthz"]["get"]["responses"]["200"]["description"]
    with pytest.raises(OpenApiError, match="description"):
        validate(document, cls=OpenAPIV31SpecValidator)
    document = _document()
    del document["paths"]["/scim/v2/Users/{id}"]["parameters"]
    with pytest.raises(OpenApiError, match="Path parameter 'id'"):
        validate(document, cls=OpenAPIV31SpecValidator)


def test_the_paths_served_are_the_paths_described():
    document = _document()
    described = {path: frozenset(m.upper() for m in item if m in METHODS) for path, item in document["paths"].items()}
    served = wsgi.served_paths()
    assert set(served) - set(described) == set(), "served but not in contracts/openapi.yaml"
    assert set(described) - set(served) == set(), "in contracts/openapi.yaml but not served"
    assert {p: m for p, m in served.items() if described[p] != m} == {}, "methods differ"


def test_every_described_path_answers(api):
    """Each path of the document reaches its handler on the live server (none answers 'no endpoint')."""
    headers = {"Authorization": f"Bearer {api.token('maths-app')}"}
    for path, item in _document()["paths"].items():
        url = api.base + path.replace("{id}", "x").replace("{cid}", "y")
        for method in (m for m in item if m in METHODS):
            resp = api.http.request(method.upper(), url, headers=headers)
            assert resp.status_code != 405, (method, path, resp.text)
            if resp.status_code == 404:
                assert "endpoint" not in resp.text, (method, path, resp.text)


def test_openapi_json_serves_the_document_without_a_token(api):
    resp = api.http.get(f"{api.base}/openapi.json")
    assert resp.status_code == 200 and resp.headers["Content-Type"].startswith("application/json")
    assert resp.json() == json.loads(json.dumps(_document()))
    post = api.http.post(f"{api.base}/openapi.json")
    assert post.status_code == 405 and post.headers["Allow"] == "GET, HEAD"


# -- real answers against the document -------------------------------------------------------------

def test_real_answers_conform_to_the_document(api):
    schema = api.schema()
    oneroster = {"Authorization": f"Bearer {api.token('maths-app', 'oneroster')}"}
    scim = {"Authorization": f"Bearer {api.token('scim-app')}", "Content-Type": "application/scim+json"}
    checked: list[tuple[str, str, int]] = []

    def call(method: str, path: str, expect: int, **kw) -> requests.Response:
        resp = api.http.request(method, api.base + path, **kw)
        assert resp.status_code == expect, (method, path, resp.status_code, resp.text)
        operation = schema.find_operation_by_path(method, path.split("?")[0])
        assert operation is not None, f"{method} {path} is not in the document"
        sent = path.split("?")[0].split("/")
        params = {t[1:-1]: v for t, v in zip(operation.path.split("/"), sent, strict=True) if t.startswith("{")}
        operation.Case(method=method, path_parameters=params).validate_response(resp, checks=CONFORMANCE)
        checked.append((method, operation.path, expect))
        return resp

    # the token endpoint and the operations' endpoints
    call("POST", "/oauth/token", 200, data={"grant_type": "client_credentials"}, auth=("quiz-app", api.world.secrets[
        "quiz-app"]))
    call("POST", "/oauth/token", 400, data={"grant_type": "password"})
    call("POST", "/oauth/token", 400, data={"grant_type": "client_credentials", "scope": "everything"},
         auth=("quiz-app", api.world.secrets["quiz-app"]))
    call("POST", "/oauth/token", 401, data={"grant_type": "client_credentials"}, auth=("quiz-app", "wrong"))
    call("GET", "/openapi.json", 200)
    call("GET", "/healthz", 200)
    call("GET", "/readyz", 200)
    # OneRoster: each entity, collections and singles, paging headers, and each kind of error
    first: dict[str, str] = {}
    for entity in ("orgs", "schools", "academicSessions", "courses", "classes", "enrollments", "users", "students",
                   "teachers", "terms", "gradingPeriods"):
        page = call("GET", f"{ROOT}/{entity}?limit=2", 200, headers=oneroster)
        key = next(iter(page.json()))
        for found in page.json()[key][:1]:
            first[entity] = found["sourcedId"]
            call("GET", f"{ROOT}/{entity}/{found['sourcedId']}", 200, headers=oneroster)
    assert {"courses", "classes", "students", "teachers"} <= set(first), first
    call("GET", f"{ROOT}/courses/{first['courses']}/classes", 200, headers=oneroster)
    call("GET", f"{ROOT}/classes/{first['classes']}/teachers", 200, headers=oneroster)
    call("GET", f"{ROOT}/students/{first['students']}/classes", 200, headers=oneroster)
    call("GET", f"{ROOT}/teachers/{first['teachers']}/classes", 200, headers=oneroster)
    call("GET", f"{ROOT}/demographics/{first['students']}", 403, headers=oneroster)
    klass = call("GET", f"{ROOT}/schools/{U1}/classes", 200, headers=oneroster).json()["classes"][0]["sourcedId"]
    user = call("GET", f"{ROOT}/students?fields=sourcedId,givenName", 200, headers=oneroster).json()["users"][0]
    for sub in ("courses", "enrollments", "students", "teachers", "terms", f"classes/{klass}/students",
                f"classes/{klass}/teachers", f"classes/{klass}/enrollments"):
        call("GET", f"{ROOT}/schools/{U1}/{sub}", 200, headers=oneroster)
    call("GET", f"{ROOT}/classes/{klass}/students", 200, headers=oneroster)
    call("GET", f"{ROOT}/users/{user['sourcedId']}/classes", 200, headers=oneroster)
    call("GET", f"{ROOT}/users?filter=familyName%3D'Martin'&sort=familyName&orderBy=desc", 200, headers=oneroster)
    call("GET", f"{ROOT}/users?filter=nope", 400, headers=oneroster)
    call("GET", f"{ROOT}/users?fields=shoeSize", 400, headers=oneroster)
    call("GET", f"{ROOT}/users?limit=0", 400, headers=oneroster)
    call("GET", f"{ROOT}/users/nobody", 404, headers=oneroster)
    call("GET", f"{ROOT}/demographics", 403, headers=oneroster)
    call("GET", f"{ROOT}/users", 401)
    call("GET", f"{ROOT}/users", 401, headers={"Authorization": "Bearer not-a-token"})
    call("GET", f"{ROOT}/users", 403, headers={"Authorization": scim["Authorization"]})  # a scim-only token
    # SCIM: discovery, the directory's and the app's own resources, ETags, and errors
    call("GET", "/scim/v2/ServiceProviderConfig", 200, headers=scim)
    for discovery in ("ResourceTypes", "Schemas"):
        first = call("GET", f"/scim/v2/{discovery}", 200, headers=scim).json()["Resources"][0]["id"]
        call("GET", f"/scim/v2/{discovery}/{first}", 200, headers=scim)
        call("GET", f"/scim/v2/{discovery}/nothing", 404, headers=scim)
    directory = call("GET", "/scim/v2/Users?count=1", 200, headers=scim).json()["Resources"][0]["id"]
    call("GET", f"/scim/v2/Users/{directory}", 200, headers=scim)
    call("PUT", f"/scim/v2/Users/{directory}", 400, headers=scim, json={"schemas": [SCIM_USER], "userName": "x"})
    created = call("POST", "/scim/v2/Users", 201, headers=scim,
                   json={"schemas": [SCIM_USER], "userName": "robot", "name": {"givenName": "Ro"}, "active": True})
    uid, etag = created.json()["id"], created.headers["ETag"]
    call("POST", "/scim/v2/Users", 409, headers=scim, json={"schemas": [SCIM_USER], "userName": "robot"})
    call("POST", "/scim/v2/Users", 400, headers=scim, json={"schemas": [SCIM_USER]})
    call("GET", f"/scim/v2/Users/{uid}?attributes=userName", 200, headers=scim)
    call("GET", f"/scim/v2/Users/{uid}", 304, headers={**scim, "If-None-Match": etag})
    patched = call("PATCH", f"/scim/v2/Users/{uid}", 200, headers={**scim, "If-Match": etag},
                   json={"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "active", "value": False}]})
    call("PUT", f"/scim/v2/Users/{uid}", 412, headers={**scim, "If-Match": etag},
         json={"schemas": [SCIM_USER], "userName": "robot"})
    call("PUT", f"/scim/v2/Users/{uid}", 200, headers={**scim, "If-Match": patched.headers["ETag"]},
         json={"schemas": [SCIM_USER], "userName": "robot2"})
    group = call("POST", "/scim/v2/Groups", 201, headers=scim,
                 json={"schemas": [SCIM_GROUP], "displayName": "robots", "members": [{"value": uid}]}).json()["id"]
    call("GET", "/scim/v2/Groups?filter=displayName%20eq%20%22robots%22", 200, headers=scim)
    call("GET", f"/scim/v2/Groups/{group}", 200, headers=scim)
    call("PUT", f"/scim/v2/Groups/{group}", 400, headers=scim, json={"schemas": [SCIM_GROUP], "displayName": " "})
    call("GET", "/scim/v2/Users?filter=userName%20zz%20%22x%22", 400, headers=scim)
    call("POST", "/scim/v2/.search", 200, headers=scim, json={"schemas": [SEARCH], "count": 5})
    call("POST", "/scim/v2/Users/.search", 200, headers=scim,
         json={"schemas": [SEARCH], "filter": 'userName eq "robot2"'})
    call("POST", "/scim/v2/Groups/.search", 400, headers=scim, json={"filter": "x"})
    call("PATCH", f"/scim/v2/Groups/{group}", 200, headers=scim,
         json={"schemas": [PATCH_OP], "Operations": [{"op": "remove", "path": "members"}]})
    call("DELETE", f"/scim/v2/Groups/{group}", 204, headers=scim)
    call("DELETE", f"/scim/v2/Users/{uid}", 204, headers=scim)
    call("GET", f"/scim/v2/Users/{uid}", 404, headers=scim)
    call("GET", "/scim/v2/Users", 403, headers=oneroster)  # a oneroster-only token
    # every operation of the document was checked at least once against a real answer
    every = {(m.upper(), p) for p, item in _document()["paths"].items() for m in item if m in METHODS}
    missing = sorted(every - {(m, p) for m, p, _ in checked})
    assert not missing, missing


def test_the_conformance_check_catches_a_wrong_answer(api):
    """A response that breaks the document fails the same checks (so the test above can fail)."""
    schema = api.schema()
    operation = schema.find_operation_by_path("GET", "/healthz")
    resp = api.http.get(f"{api.base}/readyz")  # a readiness body where liveness is described
    with pytest.raises(st_errors.FailureGroup):
        operation.Case(method="GET").validate_response(resp, checks=CONFORMANCE)


# -- the fuzzer -------------------------------------------------------------------------------------

FUZZ_CHECKS = [st_checks.not_a_server_error, *CONFORMANCE, st_checks.negative_data_rejection, st_checks.ignored_auth,
               st_checks.unsupported_method, error_says_what]


@pytest.mark.parametrize("engine", ["postgresql"], indirect=True)  # what production runs; on SQLite too below
def test_fuzzing_from_the_document_finds_no_server_error(api):
    _fuzz(api)


@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)
def test_fuzzing_on_sqlite(api):
    _fuzz(api, examples=3)


def _fuzz(api, examples: int | None = None) -> None:
    examples = examples or int(os.environ.get("RELAIS_FUZZ_EXAMPLES", "6"))
    schema = api.schema()
    bearer = {"Authorization": f"Bearer {api.token('maths-app')}"}  # both scopes, grants in S1
    basic = {"Authorization": requests.auth._basic_auth_str("maths-app", api.world.secrets["maths-app"])}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 60, len(operations)
    failures = [failure for operation in operations
                for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE)
                for failure in _fuzz_one(api, operation, mode, basic if operation.path == "/oauth/token" else bearer,
                                         examples)]
    assert not failures, "\n\n".join(failures)


def _fuzz_one(api, operation, mode, headers: dict[str, str], examples: int) -> list[str]:
    """Up to `examples` requests of one mode for one operation; what failed, as text (all are tried)."""

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=examples, deadline=None, database=None,
              derandomize=not os.environ.get("RELAIS_FUZZ_RANDOM"),
              phases=[Phase.explicit, Phase.generate, Phase.shrink], suppress_health_check=list(HealthCheck))
    def run(case):
        case.call_and_validate(base_url=api.base, session=api.http, headers=headers, checks=FUZZ_CHECKS)

    try:
        run()
    except Unsatisfiable:  # nothing of it can be made invalid (no parameter, or any string is valid)
        assert mode == schemathesis.GenerationMode.NEGATIVE, operation.label
    except (Exception, BaseExceptionGroup) as exc:  # FailureGroup is an exception group
        return [f"{mode.value} {operation.label}: {exc}"]
    return []


# -- what fuzzing and probing found: each a server error or an input taken silently, now a clear 400 ----------

def test_bad_input_the_fuzzer_found_answers_400(api):
    scim = {"Authorization": f"Bearer {api.token('scim-app')}", "Content-Type": "application/scim+json"}
    oneroster = {"Authorization": f"Bearer {api.token('maths-app', 'oneroster')}"}

    def error(method: str, path: str, headers: dict, **kw) -> str:
        resp = api.http.request(method, api.base + path, headers=headers, **kw)
        assert resp.status_code == 400, (method, path, resp.status_code, resp.text)
        body = resp.json()
        return body.get("detail") or body["imsx_description"]

    # `schemas` not a list: was a TypeError, a 500
    assert error("POST", "/scim/v2/Users", scim, json={"schemas": 5.8e16, "userName": "x"}) == \
        "schemas must be a list of schema URNs"
    assert "schemas" in error("POST", "/scim/v2/.search", scim, json={"schemas": 3})
    # a repeated parameter is ambiguous: the first one was taken, the others dropped
    assert "startIndex given more than once" in error("GET", "/scim/v2/Users?startIndex=1&startIndex=x", scim)
    assert "limit given more than once" in error("GET", f"{ROOT}/users?limit=1&limit=2", oneroster)
    # an empty integer was read as the default
    assert error("GET", "/scim/v2/Users?count=", scim) == "count must be an integer, not ''"
    assert error("GET", f"{ROOT}/users?offset=", oneroster) == "offset must be an integer, got ''"
    # a SearchRequest's members of the wrong type were coerced (false as no attribute, [[]] as "[]")
    assert error("POST", "/scim/v2/Users/.search", scim, json={"schemas": [SEARCH], "attributes": [[]]}) == \
        "attributes must be a list of attribute names"
    assert error("POST", "/scim/v2/.search", scim, json={"schemas": [SEARCH], "count": "5"}) == \
        "count must be an integer"
    # a member without a value was dropped, the Group created without it
    assert error("POST", "/scim/v2/Groups", scim, json={"schemas": [SCIM_GROUP], "displayName": "g", "members": [{}]}) \
        == "members[0] has no value (the id of a User or Group you can see)"
    # an integer orjson cannot store: was a TypeError, a 500
    huge = json.dumps({"schemas": [SCIM_GROUP], "displayName": "g", "x": [{"y": [2**80]}]})
    assert error("POST", "/scim/v2/Groups", scim, data=huge) == "x[0].y[0] is an integer beyond 64 bits"


def test_nul_characters_answer_400_naming_where(api):
    """PostgreSQL text cannot hold NUL: an id, a filter or an attribute holding one was a 500 there."""
    scim = {"Authorization": f"Bearer {api.token('scim-app')}", "Content-Type": "application/scim+json"}
    oneroster = {"Authorization": f"Bearer {api.token('maths-app', 'oneroster')}"}
    cases = [
        ("GET", f"{ROOT}/users/a%00b", oneroster, {}, "the path holds a NUL character"),
        ("GET", f"{ROOT}/users?filter=familyName%3D'%00'", oneroster, {}, "query parameter 'filter' holds a NUL"),
        ("GET", "/scim/v2/Users/a%00b", scim, {}, "the path holds a NUL character"),
        ("PATCH", "/scim/v2/Groups/a%00b", scim, {"json": {}}, "the path holds a NUL character"),
        ("GET", '/scim/v2/Users?filter=userName%20eq%20"%00"', scim, {}, "query parameter 'filter' holds a NUL"),
        ("POST", "/scim/v2/Users", scim, {"json": {"schemas": [SCIM_USER], "userName": "a\x00b"}},
         "userName holds a NUL character"),
        ("POST", "/scim/v2/Users", scim, {"json": {"schemas": [SCIM_USER], "userName": "a", "emails": [
            {"value": "\x00"}]}}, "emails[0].value holds a NUL character"),
    ]
    for method, path, headers, kw, said in cases:
        resp = api.http.request(method, api.base + path, headers=headers, **kw)
        body = resp.json()
        assert resp.status_code == 400, (path, resp.text)
        assert said in (body.get("detail") or body.get("imsx_description")), body
        assert "\x00" not in resp.text and "\\u0000" not in resp.text  # the value is not echoed


def test_a_start_index_past_any_listing_is_an_empty_page(api):
    """Past SQL's largest OFFSET it was a 500 on PostgreSQL; RFC 7644 reads it as a page past the end."""
    scim = {"Authorization": f"Bearer {api.token('scim-app')}"}
    resp = api.http.get(f"{api.base}/scim/v2/Users?startIndex=99999999999999999999999", headers=scim)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["itemsPerPage"] == 0 and body["Resources"] == [] and body["totalResults"] > 0

"""SCIM 2.0 service provider (RFC 7643/7644) under /scim/v2, each app seeing only what it is entitled to.

Two kinds of resources:
- the directory's: the accounts the app is entitled to (`apps.entitled`, via the
  OneRoster app view) as Users with only the attributes the app may receive
  (default: the opaque id, also used as userName), and the classes/groups of
  those accounts as Groups. They are read-only: PUT/PATCH/DELETE answer 400
  with scimType `mutability`.
- the app's own: Users and Groups it POSTs, stored per app in
  `prov_scim_resource`, that it then manages; no other app ever sees them.

Not offered (and said so in /ServiceProviderConfig): bulk, sort, password change.
"""

from __future__ import annotations

import copy
import hashlib
import json
import uuid
from datetime import UTC, datetime
from functools import cache, cached_property
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, delete, exists, func, insert, select, update
from werkzeug.wrappers import Request, Response

from relais.db import writer

from ..adapters import tables as t
from . import apps
from .inputs import json_problem, nul_in_url, repeated_parameters
from .oneroster_rest import Endpoints
from .oneroster_view import AppView
from .scim_sql import DirectoryUserColumns, FilterError, JsonColumns, register_fold, to_sql

ROOT = "/scim/v2"
CT = "application/scim+json"
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
LIST = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
SEARCH = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
MAX_RESULTS = 200
_MAX_SKIP = 2**62  # more than any listing holds, less than SQL's largest OFFSET
TYPES = {"Users": ("User", USER), "Groups": ("Group", GROUP)}
_SERVER_SET = {"id", "meta", "groups", "password"}  # never taken from the client (password: never stored)
# What is served below ROOT: path -> methods (GET also answers HEAD). contracts/openapi.yaml names the same.
PATHS: dict[str, tuple[str, ...]] = {
    "/ServiceProviderConfig": ("GET",), "/ResourceTypes": ("GET",), "/ResourceTypes/{id}": ("GET",),
    "/Schemas": ("GET",), "/Schemas/{id}": ("GET",), "/.search": ("POST",),
    **{p: m for plural in TYPES for p, m in ((f"/{plural}", ("GET", "POST")), (f"/{plural}/.search", ("POST",)),
                                              (f"/{plural}/{{id}}", ("GET", "PUT", "PATCH", "DELETE")))},
}


class ScimError(Exception):
    def __init__(self, status: int, detail: str, scim_type: str | None = None, **headers: str):
        super().__init__(detail)
        self.status, self.detail, self.scim_type, self.headers = status, detail, scim_type, headers


def _json(body: Any, status: int = 200, etag: str | None = None, location: str | None = None,
          **headers: str) -> Response:
    resp = Response(json.dumps(body, ensure_ascii=False), status=status, content_type=CT, headers=headers)
    if etag:
        resp.headers["ETag"] = etag
    if location:
        resp.headers["Location"] = location
    return resp


def _template(parts: list[str]) -> str | None:
    """The PATHS entry a request's path segments fall under (a literal one first: `/Users/.search`)."""
    literal = "/" + "/".join(parts)
    if literal in PATHS:
        return literal
    if len(parts) == 2 and f"/{parts[0]}/{{id}}" in PATHS:
        return f"/{parts[0]}/{{id}}"
    return None


def error_body(status: int, detail: str, scim_type: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"schemas": [ERROR], "status": str(status), "detail": detail}
    if scim_type:
        body["scimType"] = scim_type
    return body


# -- discovery ------------------------------------------------------------------------------

def service_provider_config(base: str) -> dict[str, Any]:
    return {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
        "documentationUri": "https://github.com/relais/relais/blob/main/services/provisioning/README.md",
        "patch": {"supported": True},
        "bulk": {"supported": False, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": True, "maxResults": MAX_RESULTS},
        "changePassword": {"supported": False},
        "sort": {"supported": False},
        "etag": {"supported": True},
        "authenticationSchemes": [{
            "type": "oauthbearertoken", "name": "OAuth Bearer Token", "primary": True,
            "description": "client credentials grant at /oauth/token, scope scim (RFC 6749 §4.4, RFC 6750)"}],
        "meta": {"resourceType": "ServiceProviderConfig", "location": f"{base}/ServiceProviderConfig"},
    }


def resource_types(base: str) -> list[dict[str, Any]]:
    return [{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"], "id": name, "name": name,
             "endpoint": f"/{plural}", "description": f"{name}s: the directory's (read-only) and the app's own",
             "schema": urn, "schemaExtensions": [],
             "meta": {"resourceType": "ResourceType", "location": f"{base}/ResourceTypes/{name}"}}
            for plural, (name, urn) in TYPES.items()]


@cache
def _schema_defs() -> dict[str, dict[str, Any]]:
    """The core User and Group schemas as RFC 7643 §8.7.1 publishes them (rendered by scim2-models)."""
    from scim2_models import Group, User  # here: pydantic and its models take ~0.7 s to import, for /Schemas alone

    out = {}
    for model in (User, Group):
        d = model.to_schema().model_dump(exclude_none=True)
        out[d["id"]] = d
    return out


def schemas(base: str) -> list[dict[str, Any]]:
    out = []
    for urn, d in _schema_defs().items():
        d = copy.deepcopy(d)
        d["meta"] = {"resourceType": "Schema", "location": f"{base}/Schemas/{urn}"}
        out.append(d)
    return out


# -- resources ------------------------------------------------------------------------------

def _etag(version: str) -> str:
    return f'W/"{version}"'


def _digest(body: dict[str, Any]) -> str:
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]


@cache
def _models() -> dict[str, Any]:
    """scim2-models' User and Group, imported on first use (pydantic and the models take ~0.7 s to import)."""
    from scim2_models import Group, User

    return {"User": User, "Group": Group}


def _policy() -> Any:
    """What we read from apps: the RFC's strict reading, but attributes no schema declares are kept as sent."""
    from scim2_models import ScimPolicy

    return ScimPolicy(unknown=ScimPolicy.Unknown.keep)


def _library_error(exc: Exception) -> ScimError:
    """A scim2-models or pydantic error as our SCIM error (status, scimType and its detail)."""
    from pydantic import ValidationError
    from scim2_models import Error, SCIMException

    if isinstance(exc, ValidationError):
        first = Error.from_validation_errors(exc)[0]
        return ScimError(first.status or 400, first.detail or str(exc), first.scim_type or "invalidValue")
    if isinstance(exc, SCIMException):
        return ScimError(exc.status, exc.detail, exc.scim_type or None)
    raise exc


class _Page:
    """One source's share of a listing: its matches in order, their count."""

    def __init__(self, bodies: list[dict[str, Any]], total: int):
        self.bodies, self.total = bodies, total


class Store:
    """What one app sees over one connection: directory resources (read-only) and its own.

    Users, the directory's and the app's, are found, filtered (`scim_sql`) and paged in SQL;
    only the page's resources are built. The directory's Groups (the classes of the visible
    accounts) are derived from the accounts' memberships, so they are built and matched with
    scim2-models' own matcher: an academy has some thousands of them, not 100,000.
    """

    def __init__(self, conn: Connection, caller: apps.Caller, base: str):
        self.conn, self.app, self.base = conn, caller.app, base
        self.dialect = conn.dialect.name
        register_fold(conn)
        self._view: AppView | None = None

    @property
    def view(self) -> AppView:
        if self._view is None:
            self._view = AppView(self.conn, self.app)
        return self._view

    def _meta(self, kind: str, rid: str, version: str, created: str, modified: str) -> dict[str, Any]:
        plural = kind + "s"
        return {"resourceType": kind, "created": created, "lastModified": modified,
                "location": f"{self.base}/{plural}/{rid}", "version": _etag(version)}

    # -- the directory's users --------------------------------------------------------
    def _entitled(self) -> Any:
        return exists().where(t.grant.c.person == t.person.c.jointure,
                              t.grant.c.resource.in_(sorted(self.app.resources)))

    def _directory_user(self, jointure: str, data: bytes) -> dict[str, Any]:
        rec, a = orjson.loads(data), self.view.attributes
        body: dict[str, Any] = {"schemas": [USER], "id": jointure, "userName": jointure, "active": True}
        name = {key: rec[field] for key, field in (("givenName", "first_name"), ("familyName", "last_name"))
                if field in a and rec.get(field)}
        if name:
            body["name"] = name
        if "email" in a and rec.get("email"):
            body["emails"] = [{"value": rec["email"], "primary": True}]
        stamp = self.view.modified
        body["meta"] = self._meta("User", jointure, _digest(body), stamp, stamp)
        return body

    def _directory_users(self, cond: Any, offset: int, limit: int) -> _Page:
        if not self.app.resources:
            return _Page([], 0)
        p = t.person.c
        where = [self._entitled()] if cond is None else [cond, self._entitled()]  # the filter first: cheaper
        if limit <= 0:
            return _Page([], self.conn.execute(select(func.count()).select_from(t.person).where(*where)).scalar_one())
        # The page's keys and the count in one pass, without holding every match's record; then the records.
        rows = self.conn.execute(select(p.jointure, func.count().over().label("total")).where(*where)
                                 .order_by(p.jointure).offset(offset).limit(limit)).all()
        if not rows:
            total = 0 if offset == 0 else self._directory_users(cond, 0, 0).total
            return _Page([], total)
        keys = [r.jointure for r in rows]
        data = dict(self.conn.execute(select(p.jointure, p.data).where(p.jointure.in_(keys))).all())
        return _Page([self._directory_user(k, data[k]) for k in keys], rows[0].total)

    def _user_columns(self) -> DirectoryUserColumns:
        return DirectoryUserColumns(self.dialect, t.person.c.jointure, t.person.c.data, self.view.attributes)

    # -- the directory's groups --------------------------------------------------------
    @cached_property
    def directory_groups(self) -> list[dict[str, Any]]:
        """The classes of the visible accounts as Groups, built once per Store (a request): checking a
        Group's members looks each one up here."""
        ep = Endpoints(self.view)
        members: dict[str, list[str]] = {}
        for e in ep.enrollments():
            members.setdefault(e["class"]["sourcedId"], []).append(e["user"]["sourcedId"])
        out = []
        for c in ep.classes():
            body: dict[str, Any] = {
                "schemas": [GROUP], "id": c["sourcedId"], "displayName": c["title"],
                "members": [{"value": m, "type": "User", "$ref": f"{self.base}/Users/{m}"}
                            for m in sorted(set(members.get(c["sourcedId"], [])))]}
            stamp = self.view.modified
            body["meta"] = self._meta("Group", body["id"], _digest(body), stamp, stamp)
            out.append(body)
        return out

    # -- the app's own ------------------------------------------------------------------
    def _local_body(self, row: Any) -> dict[str, Any]:
        body = orjson.loads(row.data)
        body["id"] = row.id
        body["meta"] = self._meta(row.type, row.id, str(row.version), _iso(row.created), _iso(row.modified))
        return body

    def _local_where(self, kind: str) -> list[Any]:
        return [t.scim_resource.c.app == self.app.id, t.scim_resource.c.type == kind]

    def _local(self, kind: str, cond: Any, offset: int, limit: int) -> _Page:
        r = t.scim_resource.c
        where = self._local_where(kind) + ([] if cond is None else [cond])
        if limit <= 0:
            return _Page([], self.conn.execute(select(func.count()).select_from(t.scim_resource)
                                               .where(*where)).scalar_one())
        rows = self.conn.execute(select(t.scim_resource, func.count().over().label("total")).where(*where)
                                 .order_by(r.created, r.id).offset(offset).limit(limit)).all()
        if not rows:
            return _Page([], 0 if offset == 0 else self._local(kind, cond, 0, 0).total)
        return _Page([self._local_body(row) for row in rows], rows[0].total)

    def _local_columns(self) -> JsonColumns:
        return JsonColumns(self.dialect, t.scim_resource.c.data, t.scim_resource.c.id)

    # -- finding ------------------------------------------------------------------------
    def pages(self, kind: str, text: str | None, strict: bool) -> list[tuple[Any, set[str]]]:
        """The sources of `kind` in listing order, each as (offset, limit) -> _Page, with the filter's
        attributes that `kind` does not declare."""
        from scim2_models import SCIMException, ScimFilter

        scim_filter = None
        if text is not None:
            try:
                bound: Any = ScimFilter
                scim_filter = bound[_models()[kind]](text)
            except SCIMException as exc:
                raise ScimError(400, f"filter: {exc.detail}", "invalidFilter") from None
            except ValueError as exc:
                raise ScimError(400, f"filter: {exc}", "invalidFilter") from None

        def condition(columns: Any) -> tuple[Any, set[str]]:
            if scim_filter is None:
                return None, set()
            try:
                return to_sql(scim_filter, columns, strict=strict)
            except FilterError as exc:
                raise ScimError(400, f"filter: {exc}", "invalidFilter") from None

        local_cond, unknown = condition(self._local_columns())
        if kind == "User":
            dir_cond, _ = condition(self._user_columns())
            return [(lambda o, n: self._directory_users(dir_cond, o, n), unknown),
                    (lambda o, n: self._local("User", local_cond, o, n), unknown)]

        def groups(offset: int, limit: int) -> _Page:
            found = self.directory_groups
            if scim_filter is not None:
                model = _models()["Group"]
                found = [g for g in found if scim_filter.match(model.model_validate(g))]
            return _Page(found[offset:offset + max(0, limit)], len(found))
        return [(groups, unknown), (lambda o, n: self._local("Group", local_cond, o, n), unknown)]

    def find(self, kind: str, rid: str) -> tuple[dict[str, Any], bool] | None:
        """(resource, is it the app's own) by its id, or None if the app cannot see it."""
        row = self.conn.execute(select(t.scim_resource).where(*self._local_where(kind),
                                                              t.scim_resource.c.id == rid)).first()
        if row is not None:
            return self._local_body(row), True
        if kind == "User":
            if not self.app.resources:
                return None
            found = self.conn.execute(select(t.person.c.jointure, t.person.c.data)
                                      .where(t.person.c.jointure == rid, self._entitled())).first()
            return (self._directory_user(found.jointure, found.data), False) if found else None
        group = next((g for g in self.directory_groups if g["id"] == rid), None)
        return (group, False) if group else None

    def one(self, kind: str, rid: str) -> tuple[dict[str, Any], bool]:
        """(resource, is it the app's own); 404 if the app cannot see it."""
        found = self.find(kind, rid)
        if found is None:
            raise ScimError(404, f"no {kind} {rid!r} here")
        return found

    def user_name_taken(self, user_name: str, rid: str | None) -> bool:
        from scim2_models import ScimFilter

        text = f"userName eq {ScimFilter.quote(user_name)}"
        return any(body["id"] != rid for page, _ in self.pages("User", text, strict=True)
                   for body in page(0, 2).bodies)


def _iso(moment: datetime) -> str:
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _named(body: dict[str, Any], name: str) -> Any:
    """A top-level attribute of a client's body, its name in any case."""
    return next((v for k, v in body.items() if k.lower() == name.lower()), None)


def _canonical(kind: str, body: dict[str, Any], scim_ctx: Any = None) -> dict[str, Any]:
    """The resource as scim2-models reads and writes it (attribute names as the schema spells them),
    without what the server sets or never keeps; 400 on what does not fit the schema."""
    from pydantic import ValidationError
    from scim2_models import Context, SCIMException

    try:
        with _policy():
            resource = _models()[kind].model_validate(body, scim_ctx=scim_ctx)
            out: dict[str, Any] = resource.model_dump(scim_ctx=Context.DEFAULT)
    except (ValidationError, SCIMException) as exc:
        raise _library_error(exc) from None
    return {k: v for k, v in out.items() if k.lower() not in _SERVER_SET}


def _context(request: str) -> Any:
    from scim2_models import Context

    return {"creation": Context.RESOURCE_CREATION_REQUEST, "replacement": Context.RESOURCE_REPLACEMENT_REQUEST}[request]


def _schemas(body: dict[str, Any]) -> list[str]:
    """A message's `schemas`: a list of URNs (400 if it is anything else)."""
    found = body.get("schemas")
    if not isinstance(found, list) or not all(isinstance(urn, str) for urn in found):
        raise ScimError(400, "schemas must be a list of schema URNs", "invalidSyntax")
    return found


def _check(kind: str, urn: str, body: Any, store: Store, rid: str | None, scim_ctx: Any = None) -> dict[str, Any]:
    """The client's resource, cleaned of server-set attributes; 400 on what is wrong."""
    if not isinstance(body, dict):
        raise ScimError(400, "the body must be a JSON object", "invalidSyntax")
    if urn not in _schemas(body):
        raise ScimError(400, f"schemas must include {urn}", "invalidSyntax")
    clean = {k: v for k, v in body.items() if k.lower() not in _SERVER_SET}
    key = "userName" if kind == "User" else "displayName"
    value = _named(clean, key)
    if not isinstance(value, str) or not value.strip():
        raise ScimError(400, f"{key} is required (a non-empty string)", "invalidValue")
    members = _named(clean, "members") or []
    if kind == "Group" and not isinstance(members, list):
        raise ScimError(400, "members must be a list", "invalidValue")
    for i, m in enumerate(members if kind == "Group" else ()):
        if not isinstance(m, dict) or not isinstance(_named(m, "value"), str):
            raise ScimError(400, f"members[{i}] has no value (the id of a User or Group you can see)", "invalidValue")
    clean = _canonical(kind, clean, scim_ctx)
    if kind == "User":
        if store.user_name_taken(value, rid):
            raise ScimError(409, f"userName {value!r} is taken", "uniqueness")
        return clean
    members = clean.get("members") or []
    for m in members:
        value = m.get("value") if isinstance(m, dict) else None
        found = None if not isinstance(value, str) else "User" if store.find("User", value) else \
            "Group" if store.find("Group", value) else None
        if found is None:
            raise ScimError(400, f"member {m!r} is not a User or Group you can see", "invalidValue")
        m.setdefault("type", found)
        m["$ref"] = f"{store.base}/{m['type']}s/{m['value']}"
    clean["members"] = members
    return clean


def _strip_schema(path: str) -> str:
    """`urn:…:core:2.0:User:name.givenName` -> `name.givenName`."""
    low = path.lower()
    for urn in (USER, GROUP):
        if low.startswith(urn.lower() + ":"):
            return path[len(urn) + 1:]
    return path


def _project(body: dict[str, Any], attributes: list[str] | None, excluded: list[str] | None) -> dict[str, Any]:
    always = {"id", "schemas"}
    if attributes:
        out: dict[str, Any] = {k: v for k, v in body.items() if k in always}
        for path in attributes:
            top, _, sub = _strip_schema(path).partition(".")
            key = next((k for k in body if k.lower() == top.lower()), None)
            if key is None:
                continue
            if not sub:
                out[key] = body[key]
            elif isinstance(body[key], dict):
                subkey = next((k for k in body[key] if k.lower() == sub.lower()), None)
                if subkey:
                    out.setdefault(key, {})[subkey] = body[key][subkey]
            elif isinstance(body[key], list):
                out[key] = [{k: v for k, v in it.items() if k.lower() == sub.lower()}
                            for it in body[key] if isinstance(it, dict)]
        return out
    if excluded:
        drop = {_strip_schema(p).lower() for p in excluded} - always
        return {k: v for k, v in body.items() if k.lower() not in drop}
    return body


def _csv(value: Any) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, list):
        return [str(v) for v in value]
    return [v.strip() for v in str(value).split(",") if v.strip()]


def _int(value: Any, name: str, default: int) -> int:
    if value is None:
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ScimError(400, f"{name} must be an integer, not {value!r}", "invalidValue") from None


def listing(store: Store, kinds: list[str], params: dict[str, Any]) -> dict[str, Any]:
    """A ListResponse: each kind's sources in order (the directory's, then the app's own), filtered and
    paged in SQL (the directory's Groups aside, see Store)."""
    text = None if params.get("filter") is None else str(params["filter"])
    start = max(1, _int(params.get("startIndex"), "startIndex", 1))
    count = min(MAX_RESULTS, max(0, _int(params.get("count"), "count", MAX_RESULTS)))
    sources = [s for kind in kinds for s in store.pages(kind, text, strict=len(kinds) == 1)]
    unknown = set.intersection(*(u for _, u in sources)) if sources else set()
    if text is not None and unknown:
        raise ScimError(400, f"filter: no resource type here has {', '.join(sorted(unknown))}", "invalidFilter")
    page: list[dict[str, Any]] = []
    skip, total = min(start - 1, _MAX_SKIP), 0  # past the end is an empty page: no SQL OFFSET overflow
    for source, _ in sources:
        got = source(skip, count - len(page))
        page.extend(got.bodies)
        total += got.total
        skip = max(0, skip - got.total)
    attrs, excl = _csv(params.get("attributes")), _csv(params.get("excludedAttributes"))
    return {"schemas": [LIST], "totalResults": total, "startIndex": start, "itemsPerPage": len(page),
            "Resources": [_project(r, attrs, excl) for r in page]}


# -- PATCH (RFC 7644 §3.5.2), by scim2-models ---------------------------------------------------

def apply_patch(kind: str, body: dict[str, Any], ops: Any) -> dict[str, Any]:
    """A new resource body with the PatchOp `ops` applied (plain data, no I/O): scim2-models' PatchOp."""
    from pydantic import ValidationError
    from scim2_models import Context, PatchOp, SCIMException

    if not isinstance(ops, dict):
        raise ScimError(400, f"a PATCH body is a {PATCH_OP} message", "invalidSyntax")
    model = _models()[kind]
    patch_op: Any = PatchOp
    try:
        with _policy():
            patch = patch_op[model].model_validate(ops, scim_ctx=Context.RESOURCE_PATCH_REQUEST)
            resource = model.model_validate(body)
            patch.patch(resource)
            out: dict[str, Any] = resource.model_dump(scim_ctx=Context.DEFAULT)
    except (ValidationError, SCIMException) as exc:
        raise _library_error(exc) from None
    return {k: v for k, v in out.items() if k.lower() not in _SERVER_SET}


# -- the handler ----------------------------------------------------------------------------

def _body(request: Request) -> Any:
    try:
        body = json.loads(request.get_data(as_text=True) or "null")
    except ValueError as exc:
        raise ScimError(400, f"the body is not JSON: {exc}", "invalidSyntax") from None
    problem = json_problem(body)
    if problem:
        raise ScimError(400, problem, "invalidValue")
    return body


def _query(request: Request) -> dict[str, str]:
    """The query parameters, each given once: a repeated one is ambiguous."""
    repeated = repeated_parameters(request)
    if repeated:
        raise ScimError(400, repeated, "invalidValue")
    return dict(request.args)


def _check_search(req: dict[str, Any]) -> None:
    """A SearchRequest's members have the types RFC 7644 §3.4.3 gives them (400 naming the one that has not)."""
    if req.get("filter") is not None and not isinstance(req["filter"], str):
        raise ScimError(400, "filter must be a string", "invalidFilter")
    for key in ("startIndex", "count"):
        if req.get(key) is not None and (isinstance(req[key], bool) or not isinstance(req[key], int)):
            raise ScimError(400, f"{key} must be an integer", "invalidValue")
    for key in ("attributes", "excludedAttributes"):
        value = req.get(key)
        if value is not None and not (isinstance(value, list) and all(isinstance(a, str) for a in value)):
            raise ScimError(400, f"{key} must be a list of attribute names", "invalidValue")


def _if_match(request: Request, current: dict[str, Any]) -> None:
    wanted = request.headers.get("If-Match")
    if wanted and wanted.strip() != "*" and current["meta"]["version"] not in [w.strip() for w in wanted.split(",")]:
        raise ScimError(412, "the resource changed since that version (If-Match)")


def _save(conn: Connection, app: str, kind: str, rid: str, data: dict[str, Any], new: bool,
          version: int = 1) -> None:
    now = datetime.now(UTC)
    stored = {k: v for k, v in data.items() if k not in ("id", "meta")}
    if new:
        conn.execute(insert(t.scim_resource).values(app=app, id=rid, type=kind, data=orjson.dumps(stored),
                                                    version=1, created=now, modified=now))
    else:
        conn.execute(update(t.scim_resource).where(t.scim_resource.c.app == app, t.scim_resource.c.id == rid)
                     .values(data=orjson.dumps(stored), version=version + 1, modified=now))


def _dispatch(request: Request, path: str, engine: Engine, caller: apps.Caller) -> Response:
    base = request.host_url.rstrip("/") + ROOT
    parts = [p for p in path.strip("/").split("/") if p]
    method = "GET" if request.method == "HEAD" else request.method
    nul = nul_in_url(request, path)
    if nul:
        raise ScimError(400, f"{nul} holds a NUL character", "invalidValue")
    template = _template(parts)
    if template is None:
        raise ScimError(404, f"no SCIM endpoint at {ROOT}{path}")
    if method not in PATHS[template]:
        allowed = ", ".join(PATHS[template])
        raise ScimError(405, f"{request.method} is not offered on {ROOT}{template}: use {allowed}",
                        Allow=allowed + (", HEAD" if "GET" in PATHS[template] else ""))
    if parts == ["ServiceProviderConfig"]:
        return _json(service_provider_config(base))
    if parts and parts[0] in ("ResourceTypes", "Schemas"):
        items = resource_types(base) if parts[0] == "ResourceTypes" else schemas(base)
        if len(parts) == 2:
            found = [i for i in items if i["id"] == parts[1]]
            if not found:
                raise ScimError(404, f"no {parts[0][:-1]} {parts[1]!r}")
            return _json(found[0])
        return _json({"schemas": [LIST], "totalResults": len(items), "startIndex": 1, "itemsPerPage": len(items),
                      "Resources": items})
    if parts[-1] == ".search":
        req = _body(request)
        if not isinstance(req, dict) or SEARCH not in _schemas(req):
            raise ScimError(400, f"a .search body is a {SEARCH} message", "invalidSyntax")
        _check_search(req)
        kinds = [TYPES[parts[0]][0]] if len(parts) == 2 else ["User", "Group"]
        with engine.connect() as conn:
            return _json(listing(Store(conn, caller, base), kinds, req))
    kind, urn = TYPES[parts[0]]
    rid = parts[1] if len(parts) == 2 else None
    params = _query(request)
    if rid is None:
        if method == "GET":
            with engine.connect() as conn:
                return _json(listing(Store(conn, caller, base), [kind], params))
        with writer(engine).begin() as conn:
            store = Store(conn, caller, base)
            data = _check(kind, urn, _body(request), store, None, _context("creation"))
            rid = uuid.uuid4().hex
            _save(conn, caller.app.id, kind, rid, data, new=True)
            created = store.one(kind, rid)[0]
        return _json(created, 201, etag=created["meta"]["version"], location=created["meta"]["location"])
    attrs, excl = _csv(params.get("attributes")), _csv(params.get("excludedAttributes"))
    if method == "GET":
        with engine.connect() as conn:
            resource, _ = Store(conn, caller, base).one(kind, rid)
        if request.headers.get("If-None-Match") == resource["meta"]["version"]:
            return Response(status=304, headers={"ETag": resource["meta"]["version"]})
        return _json(_project(resource, attrs, excl), etag=resource["meta"]["version"])
    with writer(engine).begin() as conn:
        store = Store(conn, caller, base)
        current, mine = store.one(kind, rid)
        if not mine:
            raise ScimError(400, f"{kind} {rid!r} comes from the directory and is read-only", "mutability")
        _if_match(request, current)
        version = int(current["meta"]["version"][3:-1])
        if method == "DELETE":
            conn.execute(delete(t.scim_resource).where(t.scim_resource.c.app == caller.app.id,
                                                       t.scim_resource.c.id == rid))
            return Response(status=204)
        if method == "PUT":
            data = _check(kind, urn, _body(request), store, rid, _context("replacement"))
        else:
            patched = apply_patch(kind, {k: v for k, v in current.items() if k not in ("id", "meta")}, _body(request))
            data = _check(kind, urn, patched, store, rid)
        _save(conn, caller.app.id, kind, rid, data, new=False, version=version)
        updated = store.one(kind, rid)[0]
    return _json(_project(updated, attrs, excl), etag=updated["meta"]["version"])


def handle(request: Request, path: str, engine: Engine, caller: apps.Caller) -> Response:
    """Answer one SCIM request of an authenticated app; `path` follows /scim/v2."""
    try:
        return _dispatch(request, path, engine, caller)
    except ScimError as exc:
        return _json(error_body(exc.status, exc.detail, exc.scim_type), exc.status, **exc.headers)

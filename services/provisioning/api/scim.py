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
from functools import cache
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, delete, insert, select, update
from werkzeug.wrappers import Request, Response

from relais.db import writer

from ..adapters import tables as t
from . import apps
from .oneroster_rest import Endpoints
from .oneroster_view import AppView
from .scim_filter import FilterError, get_attr, parse, strip_schema

ROOT = "/scim/v2"
CT = "application/scim+json"
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
LIST = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
SEARCH = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
MAX_RESULTS = 200
TYPES = {"Users": ("User", USER), "Groups": ("Group", GROUP)}
_SERVER_SET = {"id", "meta", "groups", "password"}  # never taken from the client (password: never stored)


class ScimError(Exception):
    def __init__(self, status: int, detail: str, scim_type: str | None = None):
        super().__init__(detail)
        self.status, self.detail, self.scim_type = status, detail, scim_type


def _json(body: Any, status: int = 200, etag: str | None = None, location: str | None = None) -> Response:
    resp = Response(json.dumps(body, ensure_ascii=False), status=status, content_type=CT)
    if etag:
        resp.headers["ETag"] = etag
    if location:
        resp.headers["Location"] = location
    return resp


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


class Store:
    """What one app sees over one connection: directory resources (read-only) and its own."""

    def __init__(self, conn: Connection, caller: apps.Caller, base: str):
        self.conn, self.app, self.base = conn, caller.app, base
        self._ep = Endpoints(AppView(conn, caller.app))

    def _meta(self, kind: str, rid: str, version: str, created: str, modified: str) -> dict[str, Any]:
        plural = kind + "s"
        return {"resourceType": kind, "created": created, "lastModified": modified,
                "location": f"{self.base}/{plural}/{rid}", "version": _etag(version)}

    def directory(self, kind: str) -> list[dict[str, Any]]:
        out = []
        if kind == "User":
            for u in self._ep.users():
                body: dict[str, Any] = {"schemas": [USER], "id": u["sourcedId"], "userName": u["sourcedId"],
                                        "active": u.get("status", "active") == "active"}
                name = {k: u[k] for k in ("givenName", "familyName") if u.get(k)}
                if name:
                    body["name"] = name
                if u.get("email"):
                    body["emails"] = [{"value": u["email"], "primary": True}]
                out.append(body)
        else:
            members: dict[str, list[str]] = {}
            for e in self._ep.enrollments():
                members.setdefault(e["class"]["sourcedId"], []).append(e["user"]["sourcedId"])
            for c in self._ep.classes():
                out.append({"schemas": [GROUP], "id": c["sourcedId"], "displayName": c["title"],
                            "members": [{"value": m, "type": "User", "$ref": f"{self.base}/Users/{m}"}
                                        for m in sorted(set(members.get(c["sourcedId"], [])))]})
        for body in out:
            stamp = self._ep.view.modified
            body["meta"] = self._meta(kind, body["id"], _digest(body), stamp, stamp)
        return out

    def local(self, kind: str, rid: str | None = None) -> list[dict[str, Any]]:
        q = select(t.scim_resource).where(t.scim_resource.c.app == self.app.id, t.scim_resource.c.type == kind)
        if rid is not None:
            q = q.where(t.scim_resource.c.id == rid)
        out = []
        for row in self.conn.execute(q.order_by(t.scim_resource.c.created, t.scim_resource.c.id)):
            body = orjson.loads(row.data)
            body["id"] = row.id
            body["meta"] = self._meta(kind, row.id, str(row.version), _iso(row.created), _iso(row.modified))
            out.append(body)
        return out

    def all(self, kind: str) -> list[dict[str, Any]]:
        return self.directory(kind) + self.local(kind)

    def one(self, kind: str, rid: str) -> tuple[dict[str, Any], bool]:
        """(resource, is it the app's own); 404 if the app cannot see it."""
        mine = self.local(kind, rid)
        if mine:
            return mine[0], True
        for body in self.directory(kind):
            if body["id"] == rid:
                return body, False
        raise ScimError(404, f"no {kind} {rid!r} here")


def _iso(moment: datetime) -> str:
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _check(kind: str, urn: str, body: Any, store: Store, rid: str | None) -> dict[str, Any]:
    """The client's resource, cleaned of server-set attributes; 400 on what is wrong."""
    if not isinstance(body, dict):
        raise ScimError(400, "the body must be a JSON object", "invalidSyntax")
    if urn not in (body.get("schemas") or []):
        raise ScimError(400, f"schemas must include {urn}", "invalidSyntax")
    clean = {k: v for k, v in body.items() if k.lower() not in _SERVER_SET}
    key = "userName" if kind == "User" else "displayName"
    value = get_attr(clean, key)
    if not isinstance(value, str) or not value.strip():
        raise ScimError(400, f"{key} is required (a non-empty string)", "invalidValue")
    if kind == "User":
        for other in store.all("User"):
            if other["id"] != rid and str(other.get("userName", "")).lower() == value.lower():
                raise ScimError(409, f"userName {value!r} is taken", "uniqueness")
    else:
        members = get_attr(clean, "members") or []
        if not isinstance(members, list):
            raise ScimError(400, "members must be a list", "invalidValue")
        known = {u["id"] for u in store.all("User")} | {g["id"] for g in store.all("Group")}
        for m in members:
            if not isinstance(m, dict) or m.get("value") not in known:
                raise ScimError(400, f"member {m!r} is not a User or Group you can see", "invalidValue")
            m.setdefault("type", "User" if m["value"] in {u["id"] for u in store.all("User")} else "Group")
            m["$ref"] = f"{store.base}/{m['type']}s/{m['value']}"
    return clean


def _project(body: dict[str, Any], attributes: list[str] | None, excluded: list[str] | None) -> dict[str, Any]:
    always = {"id", "schemas"}
    if attributes:
        out: dict[str, Any] = {k: v for k, v in body.items() if k in always}
        for path in attributes:
            top, _, sub = strip_schema(path).partition(".")
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
        drop = {strip_schema(p).lower() for p in excluded} - always
        return {k: v for k, v in body.items() if k.lower() not in drop}
    return body


def _csv(value: Any) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, list):
        return [str(v) for v in value]
    return [v.strip() for v in str(value).split(",") if v.strip()]


def _int(value: Any, name: str, default: int) -> int:
    if value in (None, ""):
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ScimError(400, f"{name} must be an integer, not {value!r}", "invalidValue") from None


def listing(store: Store, kinds: list[str], params: dict[str, Any]) -> dict[str, Any]:
    found = [r for kind in kinds for r in store.all(kind)]
    if params.get("filter") is not None:
        try:
            pred = parse(str(params["filter"]))
            found = [r for r in found if pred(r)]
        except FilterError as exc:
            raise ScimError(400, f"filter: {exc}", "invalidFilter") from None
    start = max(1, _int(params.get("startIndex"), "startIndex", 1))
    count = min(MAX_RESULTS, max(0, _int(params.get("count"), "count", MAX_RESULTS)))
    page = found[start - 1:start - 1 + count]
    attrs, excl = _csv(params.get("attributes")), _csv(params.get("excludedAttributes"))
    return {"schemas": [LIST], "totalResults": len(found), "startIndex": start, "itemsPerPage": len(page),
            "Resources": [_project(r, attrs, excl) for r in page]}


# -- PATCH (RFC 7644 §3.5.2) -----------------------------------------------------------------

def _split_path(path: str) -> tuple[str, Any, str | None]:
    """`members[value eq "x"].display` -> ("members", predicate, "display")."""
    path = strip_schema(path.strip())
    if "[" in path:
        head, _, rest = path.partition("[")
        inner, close, after = rest.rpartition("]")
        if not close:
            raise ScimError(400, f"path {path!r}: no closing ]", "invalidPath")
        try:
            pred = parse(inner)
        except FilterError as exc:
            raise ScimError(400, f"path {path!r}: {exc}", "invalidPath") from None
        return head, pred, after.lstrip(".") or None
    head, _, sub = path.partition(".")
    return head, None, sub or None


def _key(body: dict[str, Any], name: str) -> str:
    return next((k for k in body if k.lower() == name.lower()), name)


def apply_patch(body: dict[str, Any], ops: Any) -> dict[str, Any]:
    """A new resource body with the PatchOp `ops` applied (plain data, no I/O)."""
    if not isinstance(ops, dict) or PATCH_OP not in (ops.get("schemas") or []):
        raise ScimError(400, f"a PATCH body is a {PATCH_OP} message", "invalidSyntax")
    operations = get_attr(ops, "Operations")
    if not isinstance(operations, list) or not operations:
        raise ScimError(400, "Operations must be a non-empty list", "invalidSyntax")
    body = copy.deepcopy(body)
    for n, op in enumerate(operations, 1):
        if not isinstance(op, dict) or str(op.get("op", "")).lower() not in ("add", "replace", "remove"):
            raise ScimError(400, f"operation {n}: op must be add, replace or remove", "invalidSyntax")
        kind, path, value = op["op"].lower(), op.get("path"), op.get("value")
        if not path:
            if kind == "remove":
                raise ScimError(400, f"operation {n}: remove needs a path", "noTarget")
            if not isinstance(value, dict):
                raise ScimError(400, f"operation {n}: without a path, value must be an object", "invalidValue")
            for k, v in value.items():
                k = strip_schema(k)
                if k.lower() in _SERVER_SET or k == "schemas":
                    continue
                key = _key(body, k)
                if kind == "add" and isinstance(body.get(key), list) and isinstance(v, list):
                    body[key] = body[key] + [x for x in v if x not in body[key]]
                elif kind == "add" and isinstance(body.get(key), dict) and isinstance(v, dict):
                    body[key] = {**body[key], **v}
                else:
                    body[key] = v
            continue
        head, pred, sub = _split_path(str(path))
        if head.lower() == "password":  # writeOnly, returned never: accepted and dropped, never stored
            continue
        if head.lower() in _SERVER_SET:
            raise ScimError(400, f"operation {n}: {head} is not writable", "mutability")
        key = _key(body, head)
        if pred is not None:
            items = body.get(key)
            if not isinstance(items, list):
                raise ScimError(400, f"operation {n}: {head} is not multi-valued", "noTarget")
            hits = [it for it in items if isinstance(it, dict) and pred(it)]
            if not hits and kind != "add":
                raise ScimError(400, f"operation {n}: nothing matches {path!r}", "noTarget")
            if kind == "remove":
                if sub is None:
                    body[key] = [it for it in items if not any(it is h for h in hits)]
                else:
                    for it in hits:
                        it.pop(_key(it, sub), None)
            elif sub is None:
                body[key] = [value if any(it is h for h in hits) else it for it in items]
            else:
                for it in hits:
                    it[_key(it, sub)] = value
            continue
        if sub is None:
            if kind == "remove":
                body.pop(key, None)
            elif kind == "add" and isinstance(body.get(key), list):
                extra = value if isinstance(value, list) else [value]
                body[key] = body[key] + [x for x in extra if x not in body[key]]
            elif kind == "add" and isinstance(body.get(key), dict) and isinstance(value, dict):
                body[key] = {**body[key], **value}
            else:
                body[key] = value
        else:
            parent = body.setdefault(key, {})
            if not isinstance(parent, dict):
                raise ScimError(400, f"operation {n}: {head} has no sub-attribute {sub}", "invalidPath")
            if kind == "remove":
                parent.pop(_key(parent, sub), None)
            else:
                parent[_key(parent, sub)] = value
    return body


# -- the handler ----------------------------------------------------------------------------

def _body(request: Request) -> Any:
    try:
        return json.loads(request.get_data(as_text=True) or "null")
    except ValueError as exc:
        raise ScimError(400, f"the body is not JSON: {exc}", "invalidSyntax") from None


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
    method = request.method
    discovery = parts and parts[0] in ("ServiceProviderConfig", "ResourceTypes", "Schemas")
    if discovery and method not in ("GET", "HEAD"):
        raise ScimError(405, f"{parts[0]} is read-only: use GET")
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
    if parts == [".search"] or (len(parts) == 2 and parts[1] == ".search" and parts[0] in TYPES):
        if method != "POST":
            raise ScimError(405, ".search takes POST")
        req = _body(request)
        if not isinstance(req, dict) or SEARCH not in (req.get("schemas") or []):
            raise ScimError(400, f"a .search body is a {SEARCH} message", "invalidSyntax")
        kinds = [TYPES[parts[0]][0]] if len(parts) == 2 else ["User", "Group"]
        with engine.connect() as conn:
            return _json(listing(Store(conn, caller, base), kinds, req))
    if not parts or parts[0] not in TYPES or len(parts) > 2:
        raise ScimError(404, f"no SCIM endpoint at {ROOT}{path}")
    kind, urn = TYPES[parts[0]]
    rid = parts[1] if len(parts) == 2 else None
    params = dict(request.args)
    if rid is None:
        if method == "GET":
            with engine.connect() as conn:
                return _json(listing(Store(conn, caller, base), [kind], params))
        if method != "POST":
            raise ScimError(405, f"{method} is not offered on {parts[0]}")
        with writer(engine).begin() as conn:
            store = Store(conn, caller, base)
            data = _check(kind, urn, _body(request), store, None)
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
    if method not in ("PUT", "PATCH", "DELETE"):
        raise ScimError(405, f"{method} is not offered on a {kind}")
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
            data = _check(kind, urn, _body(request), store, rid)
        else:
            patched = apply_patch({k: v for k, v in current.items() if k not in ("id", "meta")}, _body(request))
            data = _check(kind, urn, patched, store, rid)
        _save(conn, caller.app.id, kind, rid, data, new=False, version=version)
        updated = store.one(kind, rid)[0]
    return _json(_project(updated, attrs, excl), etag=updated["meta"]["version"])


def handle(request: Request, path: str, engine: Engine, caller: apps.Caller) -> Response:
    """Answer one SCIM request of an authenticated app; `path` follows /scim/v2."""
    try:
        return _dispatch(request, path, engine, caller)
    except ScimError as exc:
        return _json(error_body(exc.status, exc.detail, exc.scim_type), exc.status)

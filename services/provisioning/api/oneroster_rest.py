"""The OneRoster 1.2 rostering REST service (read endpoints), over `oneroster_view.AppView`.

Mounted by `wsgi.py` at `/ims/oneroster/rostering/v1p2`, behind the bearer
check: `handle` gets the path below that root and the authenticated app.
Collections take `limit` (default 100, at most `MAX_LIMIT`), `offset`,
`sort` + `orderBy`, `filter` and `fields`, and answer with `X-Total-Count`
and `Link` (first, prev, next, last). Errors are the spec's
`imsx_StatusInfoDType`. Anything the app is not entitled to answers 404
exactly like what does not exist, so an app cannot learn what others see.

The view is built for each request from provisioning's tables; a collection
is filtered and sorted in memory, which suits apps seeing up to some hundred
thousand accounts.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine
from werkzeug.wrappers import Request, Response

from . import apps
from .inputs import nul_in_url, repeated_parameters
from .oneroster_view import AppView

ROOT = "/ims/oneroster/rostering/v1p2"
DEFAULT_LIMIT = 100
MAX_LIMIT = 10_000

# The fields of each entity in the 1.2 REST binding: what `fields`, `filter` and `sort` may name.
FIELDS: dict[str, frozenset[str]] = {
    "org": frozenset("sourcedId status dateLastModified metadata name type identifier parent children".split()),
    "academicSession": frozenset("sourcedId status dateLastModified metadata title startDate endDate type parent "
                                 "children schoolYear".split()),
    "course": frozenset("sourcedId status dateLastModified metadata title schoolYear courseCode grades subjects org "
                        "subjectCodes resources".split()),
    "class": frozenset("sourcedId status dateLastModified metadata title classCode classType location grades "
                       "subjects course school terms subjectCodes periods resources".split()),
    "user": frozenset("sourcedId status dateLastModified metadata userMasterIdentifier username userIds enabledUser "
                      "givenName familyName middleName preferredFirstName preferredMiddleName preferredLastName "
                      "pronouns roles userProfiles primaryOrg identifier email sms phone agents grades password "
                      "resources".split()),
    "enrollment": frozenset("sourcedId status dateLastModified metadata user class school role primary beginDate "
                            "endDate".split()),
}
# entity kind -> (collection key, single key) in response bodies
KEYS = {"org": ("orgs", "org"), "academicSession": ("academicSessions", "academicSession"),
        "course": ("courses", "course"), "class": ("classes", "class"), "user": ("users", "user"),
        "enrollment": ("enrollments", "enrollment")}


class RosterError(Exception):
    """A request the service answers with an imsx_StatusInfo payload."""

    def __init__(self, status: int, minor: str, description: str, major: str = "failure", **headers: str):
        super().__init__(description)
        self.status, self.minor, self.description, self.major, self.headers = status, minor, description, major, headers


def status_info(major: str, minor: str, description: str) -> dict[str, Any]:
    return {"imsx_codeMajor": major, "imsx_severity": "error",
            "imsx_description": description,
            "imsx_CodeMinor": {"imsx_codeMinorField": [
                {"imsx_codeMinorFieldName": "TargetEndSystem", "imsx_codeMinorFieldValue": minor}]}}


def _json(body: Any, status: int = 200, **headers: str) -> Response:
    return Response(json.dumps(body, ensure_ascii=False), status=status, content_type="application/json",
                    headers=headers)


def _unknown(kind: str, sourced_id: str) -> RosterError:
    # The same answer whether the object does not exist or the app may not see it.
    return RosterError(404, "unknownobject", f"no {kind} with sourcedId {sourced_id!r}")


# -- filter (OneRoster: field op 'value' [AND|OR field op 'value']...) --------------------

_TERM = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_.]*)\s*(>=|<=|!=|=|>|<|~)\s*'((?:[^']|'')*)'\s*")
_LOGIC = re.compile(r"(AND|OR)(?=\s)", re.IGNORECASE)

Predicate = Callable[[dict[str, Any]], bool]


def _values(entity: Any, path: list[str]) -> list[Any]:
    """The values at a dotted path; lists (roles, terms…) are searched element by element."""
    if not path:
        return [v for e in entity for v in _values(e, [])] if isinstance(entity, list) else [entity]
    if isinstance(entity, list):
        return [v for e in entity for v in _values(e, path)]
    if not isinstance(entity, dict) or path[0] not in entity:
        return []
    return _values(entity[path[0]], path[1:])


def _compare(op: str, have: Any, want: str) -> bool:
    if isinstance(have, (dict, list)):
        return False
    have = str(have)
    if op == "=":
        return have == want
    if op == "!=":
        return have != want
    if op == "~":
        return want.casefold() in have.casefold()
    return {">": have > want, ">=": have >= want, "<": have < want, "<=": have <= want}[op]


def parse_filter(text: str, fields: frozenset[str]) -> Predicate:
    """The OneRoster filter grammar; AND binds tighter than OR. Errors name the offending part."""
    pos, terms, logic = 0, [], []
    while True:
        m = _TERM.match(text, pos)
        if not m:
            raise RosterError(400, "invalid_filter_field",
                              f"filter: expected field op 'value' at character {pos + 1} of {text!r} "
                              "(ops = != > >= < <= ~, value in single quotes)")
        name, op, value = m.group(1), m.group(2), m.group(3).replace("''", "'")
        if name.split(".")[0] not in fields:
            raise RosterError(400, "invalid_filter_field", f"filter: unknown field {name!r}")
        terms.append((name.split("."), op, value))
        pos = m.end()
        if pos == len(text):
            break
        lm = _LOGIC.match(text, pos)
        if not lm:
            raise RosterError(400, "invalid_filter_field",
                              f"filter: expected AND or OR at character {pos + 1} of {text!r}")
        logic.append(lm.group(1).upper())
        pos = lm.end()
    # Disjunction of conjunctions.
    groups: list[list[tuple[list[str], str, str]]] = [[terms[0]]]
    for word, term in zip(logic, terms[1:], strict=True):
        if word == "AND":
            groups[-1].append(term)
        else:
            groups.append([term])

    def holds(entity: dict[str, Any], term: tuple[list[str], str, str]) -> bool:
        path, op, value = term
        found = _values(entity, path)
        if op == "!=":
            return all(_compare(op, v, value) for v in found) if found else False
        return any(_compare(op, v, value) for v in found)

    return lambda entity: any(all(holds(entity, term) for term in group) for group in groups)


# -- collections ----------------------------------------------------------------------

def _int(request: Request, name: str, default: int, minimum: int) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise RosterError(400, "invaliddata", f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise RosterError(400, "invaliddata", f"{name} must be at least {minimum}, got {value}")
    return value


def _selection(request: Request, kind: str) -> list[str] | None:
    raw = request.args.get("fields")
    if not raw:
        return None
    names = [f.strip() for f in raw.split(",") if f.strip()]
    unknown = [f for f in names if f not in FIELDS[kind]]
    if unknown:
        raise RosterError(400, "invalid_selection_field",
                          f"fields: unknown field(s) {', '.join(unknown)} for {kind}")
    return names


def _select(entity: dict[str, Any], names: list[str] | None) -> dict[str, Any]:
    return entity if names is None else {k: entity[k] for k in names if k in entity}


def _link(request: Request, limit: int, offset: int) -> str:
    query = [(k, v) for k, v in request.args.items(multi=True) if k not in ("limit", "offset")]
    query += [("limit", str(limit)), ("offset", str(offset))]
    return f"{request.base_url}?{urllib.parse.urlencode(query)}"


def collection(request: Request, kind: str, entities: list[dict[str, Any]]) -> Response:
    """Filter, sort, page and select a collection, with X-Total-Count and Link headers."""
    fields = FIELDS[kind]
    names = _selection(request, kind)
    if request.args.get("filter"):
        keep = parse_filter(request.args["filter"], fields)
        entities = [e for e in entities if keep(e)]
    sort = request.args.get("sort")
    order = request.args.get("orderBy", "asc")
    if order not in ("asc", "desc"):
        raise RosterError(400, "invaliddata", f"orderBy must be asc or desc, got {order!r}")
    if sort:
        if sort.split(".")[0] not in fields:
            raise RosterError(400, "invaliddata", f"sort: unknown field {sort!r} for {kind}")
        path = sort.split(".")

        def key(e: dict[str, Any]) -> tuple[int, str, str]:
            found = [v for v in _values(e, path) if not isinstance(v, (dict, list))]
            return (0, str(found[0]), e["sourcedId"]) if found else (1, "", e["sourcedId"])
        entities = sorted(entities, key=key)
        if order == "desc":
            # Values in reverse, entities without one still last.
            with_value = [e for e in entities if key(e)[0] == 0][::-1]
            entities = with_value + [e for e in entities if key(e)[0] == 1]
    elif order == "desc":
        entities = entities[::-1]
    limit = min(_int(request, "limit", DEFAULT_LIMIT, 1), MAX_LIMIT)
    offset = _int(request, "offset", 0, 0)
    total = len(entities)
    page = [_select(e, names) for e in entities[offset:offset + limit]]
    links = [f'<{_link(request, limit, 0)}>; rel="first"']
    last = max(0, (total - 1) // limit * limit)
    links.append(f'<{_link(request, limit, last)}>; rel="last"')
    if offset + limit < total:
        links.append(f'<{_link(request, limit, offset + limit)}>; rel="next"')
    if offset > 0:
        links.append(f'<{_link(request, limit, max(0, offset - limit))}>; rel="prev"')
    return _json({KEYS[kind][0]: page}, 200, **{"X-Total-Count": str(total), "Link": ", ".join(links)})


def single(request: Request, kind: str, entity: dict[str, Any] | None, sourced_id: str) -> Response:
    if entity is None:
        raise _unknown(kind, sourced_id)
    return _json({KEYS[kind][1]: _select(entity, _selection(request, kind))})


# -- the endpoints -------------------------------------------------------------------

def _has_role(user: dict[str, Any], role: str | None, uai: str | None = None) -> bool:
    return any((role is None or r["role"] == role) and (uai is None or r["org"]["sourcedId"] == uai)
               for r in user["roles"])


class Endpoints:
    """The read operations, each returning (kind, entities) or (kind, entity or None)."""

    def __init__(self, view: AppView):
        self.view = view
        self._walked: list | None = None

    def walked(self) -> list:
        if self._walked is None:
            self._walked = list(self.view.walked())
        return self._walked

    def users(self, role: str | None = None, uai: str | None = None) -> list[dict[str, Any]]:
        return [w.user for w in self.walked() if _has_role(w.user, role, uai)]

    def user(self, sourced_id: str, role: str | None = None) -> dict[str, Any] | None:
        found = [w.user for w in self.view.walked(person=sourced_id)]
        return found[0] if found and _has_role(found[0], role) else None

    def enrollments(self) -> list[dict[str, Any]]:
        return [e for w in self.walked() for e in w.enrollments]

    def class_keys(self) -> set:
        return {k for w in self.walked() for k in w.classes}

    def classes(self) -> list[dict[str, Any]]:
        return self.view.classes(self.class_keys())

    def courses(self) -> list[dict[str, Any]]:
        return self.view.courses(self.class_keys())

    def orgs(self) -> list[dict[str, Any]]:
        return self.view.orgs()

    @staticmethod
    def find(entities: list[dict[str, Any]], sourced_id: str) -> dict[str, Any] | None:
        return next((e for e in entities if e["sourcedId"] == sourced_id), None)

    def school(self, sourced_id: str) -> dict[str, Any]:
        org = self.find(self.orgs(), sourced_id)
        if org is None:
            raise _unknown("school", sourced_id)
        return org

    def klass(self, sourced_id: str) -> dict[str, Any]:
        found = self.find(self.classes(), sourced_id)
        if found is None:
            raise _unknown("class", sourced_id)
        return found

    def members(self, class_sid: str, role: str) -> list[dict[str, Any]]:
        ids = {e["user"]["sourcedId"] for e in self.enrollments()
               if e["class"]["sourcedId"] == class_sid and e["role"] == role}
        return [w.user for w in self.walked() if w.user["sourcedId"] in ids]

    def classes_of_user(self, user_sid: str, role: str | None) -> list[dict[str, Any]]:
        walked = list(self.view.walked(person=user_sid))
        if not walked or not _has_role(walked[0].user, role):
            raise _unknown(role or "user", user_sid)
        mine = {e["class"]["sourcedId"] for e in walked[0].enrollments}
        return [c for c in self.view.classes(walked[0].classes) if c["sourcedId"] in mine]


Route = Callable[[Endpoints, Request, dict[str, str]], Response]
ROUTES: list[tuple[re.Pattern[str], Route]] = []
TEMPLATES: list[str] = []  # the paths below ROOT, as `route` was given them (contracts/openapi.yaml names them)


def route(pattern: str) -> Callable[[Route], Route]:
    regex = re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern) + "$")

    def register(fn: Route) -> Route:
        ROUTES.append((regex, fn))
        TEMPLATES.append(pattern)
        return fn
    return register


@route("/orgs")
def _orgs(ep, rq, p):
    return collection(rq, "org", ep.orgs())


@route("/orgs/{id}")
def _org(ep, rq, p):
    return single(rq, "org", ep.find(ep.orgs(), p["id"]), p["id"])


@route("/schools")
def _schools(ep, rq, p):
    return collection(rq, "org", [o for o in ep.orgs() if o["type"] == "school"])


@route("/schools/{id}")
def _school(ep, rq, p):
    return single(rq, "org", ep.school(p["id"]), p["id"])


@route("/schools/{id}/classes")
def _school_classes(ep, rq, p):
    ep.school(p["id"])
    return collection(rq, "class", [c for c in ep.classes() if c["school"]["sourcedId"] == p["id"]])


@route("/schools/{id}/courses")
def _school_courses(ep, rq, p):
    ep.school(p["id"])
    return collection(rq, "course", [c for c in ep.courses() if c["org"]["sourcedId"] == p["id"]])


@route("/schools/{id}/enrollments")
def _school_enrollments(ep, rq, p):
    ep.school(p["id"])
    return collection(rq, "enrollment", [e for e in ep.enrollments() if e["school"]["sourcedId"] == p["id"]])


@route("/schools/{id}/students")
def _school_students(ep, rq, p):
    ep.school(p["id"])
    return collection(rq, "user", ep.users("student", p["id"]))


@route("/schools/{id}/teachers")
def _school_teachers(ep, rq, p):
    ep.school(p["id"])
    return collection(rq, "user", ep.users("teacher", p["id"]))


@route("/schools/{id}/terms")
def _school_terms(ep, rq, p):
    ep.school(p["id"])
    return collection(rq, "academicSession", [])  # no terms: classes run over the school year


@route("/schools/{id}/classes/{cid}/enrollments")
def _school_class_enrollments(ep, rq, p):
    ep.school(p["id"])
    klass = ep.klass(p["cid"])
    if klass["school"]["sourcedId"] != p["id"]:
        raise _unknown("class", p["cid"])
    return collection(rq, "enrollment", [e for e in ep.enrollments() if e["class"]["sourcedId"] == p["cid"]])


def _school_class_members(role: str) -> Route:
    def members(ep, rq, p):
        ep.school(p["id"])
        if ep.klass(p["cid"])["school"]["sourcedId"] != p["id"]:
            raise _unknown("class", p["cid"])
        return collection(rq, "user", ep.members(p["cid"], role))
    return members


route("/schools/{id}/classes/{cid}/students")(_school_class_members("student"))
route("/schools/{id}/classes/{cid}/teachers")(_school_class_members("teacher"))


@route("/academicSessions")
def _sessions(ep, rq, p):
    return collection(rq, "academicSession", ep.view.academic_sessions())


@route("/academicSessions/{id}")
def _session(ep, rq, p):
    return single(rq, "academicSession", ep.find(ep.view.academic_sessions(), p["id"]), p["id"])


@route("/terms")
def _terms(ep, rq, p):
    return collection(rq, "academicSession", [s for s in ep.view.academic_sessions() if s["type"] == "term"])


@route("/gradingPeriods")
def _grading_periods(ep, rq, p):
    return collection(rq, "academicSession", [s for s in ep.view.academic_sessions() if s["type"] == "gradingPeriod"])


@route("/courses")
def _courses(ep, rq, p):
    return collection(rq, "course", ep.courses())


@route("/courses/{id}")
def _course(ep, rq, p):
    return single(rq, "course", ep.find(ep.courses(), p["id"]), p["id"])


@route("/courses/{id}/classes")
def _course_classes(ep, rq, p):
    if ep.find(ep.courses(), p["id"]) is None:
        raise _unknown("course", p["id"])
    return collection(rq, "class", [c for c in ep.classes() if c["course"]["sourcedId"] == p["id"]])


@route("/classes")
def _classes(ep, rq, p):
    return collection(rq, "class", ep.classes())


@route("/classes/{id}")
def _class(ep, rq, p):
    return single(rq, "class", ep.klass(p["id"]), p["id"])


@route("/classes/{id}/students")
def _class_students(ep, rq, p):
    ep.klass(p["id"])
    return collection(rq, "user", ep.members(p["id"], "student"))


@route("/classes/{id}/teachers")
def _class_teachers(ep, rq, p):
    ep.klass(p["id"])
    return collection(rq, "user", ep.members(p["id"], "teacher"))


@route("/enrollments")
def _enrollments(ep, rq, p):
    return collection(rq, "enrollment", ep.enrollments())


@route("/enrollments/{id}")
def _enrollment(ep, rq, p):
    return single(rq, "enrollment", ep.find(ep.enrollments(), p["id"]), p["id"])


@route("/users")
def _users(ep, rq, p):
    return collection(rq, "user", ep.users())


@route("/users/{id}")
def _user(ep, rq, p):
    return single(rq, "user", ep.user(p["id"]), p["id"])


@route("/users/{id}/classes")
def _user_classes(ep, rq, p):
    return collection(rq, "class", ep.classes_of_user(p["id"], None))


def _people(role: str, kind: str) -> None:
    route(f"/{kind}")(lambda ep, rq, p: collection(rq, "user", ep.users(role)))
    route(f"/{kind}/{{id}}")(lambda ep, rq, p: single(rq, "user", ep.user(p["id"], role), p["id"]))
    route(f"/{kind}/{{id}}/classes")(lambda ep, rq, p: collection(rq, "class", ep.classes_of_user(p["id"], role)))


_people("student", "students")
_people("teacher", "teachers")


@route("/demographics")
def _demographics(ep, rq, p):
    raise RosterError(403, "forbidden", "demographics are not shared with apps (data minimisation)")


route("/demographics/{id}")(_demographics)


def handle(request: Request, path: str, engine: Engine, caller: apps.Caller) -> Response:
    """Answer one rostering request of an authenticated app; `path` follows the service root."""
    try:
        if request.method not in ("GET", "HEAD"):
            raise RosterError(405, "invaliddata",
                              f"{request.method} is not offered: the rostering service is read-only",
                              major="unsupported", Allow="GET")
        path = "/" + path.strip("/")
        nul = nul_in_url(request, path)
        if nul:
            raise RosterError(400, "invaliddata", f"{nul} holds a NUL character")
        repeated = repeated_parameters(request)
        if repeated:
            raise RosterError(400, "invaliddata", repeated)
        for regex, fn in ROUTES:
            m = regex.match(path)
            if m:
                params = m.groupdict()  # werkzeug has already decoded the path
                with engine.connect() as conn:
                    view = AppView(conn, caller.app, base_url=request.host_url.rstrip("/") + ROOT)
                    return fn(Endpoints(view), request, params)
        raise RosterError(404, "unknownobject", f"no OneRoster rostering endpoint at {ROOT}{path}")
    except RosterError as exc:
        return _json(status_info(exc.major, exc.minor, exc.description), exc.status, **exc.headers)

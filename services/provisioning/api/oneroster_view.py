"""OneRoster 1.2 for one app: provisioning's view of the directory as OneRoster entities.

Free of HTTP: `AppView` reads provisioning's tables and gives the entities
of the OneRoster 1.2 information model (orgs, academicSessions, courses,
classes, users, enrollments) in their REST/JSON shape. `oneroster_rest.py`
serves them, `scim.py` reads its accounts and classes, and
`feeds/oneroster_csv.py` writes the same entities as the CSV binding's files.

What an app sees (`apps.entitled`): the accounts holding a grant of one of
its resources, the schools (UAI) of those grants, and the classes and groups
of those schools that those accounts belong to; of each account only what
its resources' catalogue entries list (`App.attributes`, default the opaque
id alone). Where OneRoster requires a field the app may not receive:

- `givenName` / `familyName` (required): the empty string. The REST schema
  types them as strings with no minimum length; no name is invented.
- a role (`roles[].role`, `enrollment.role`, required): `ext:undisclosed`
  unless the app may receive `profiles`, since a role says what kind of
  account it is. The spec's extension pattern (`ext:…`) allows it.
- the org of a role: the school of the grant, which the app knows anyway
  (it serves the account there).

Mapping (each entity `status` "active"):

- org, type `school`: a structure the app has grants in; sourcedId and identifier = UAI;
- academicSession `schoolYear`: the school year of the export day, 1 September to the next
  1 September, exclusive as the model says (`endDate` is excluded);
- class `homeroom` / `scheduled`: an AAF class (division) / group of a visible account, in a
  school of its grants;
- course: one per school and kind of class, `DIVISION` (homerooms), `GROUPE` (groups), as the GAR
  names them;
- user: an account; roles per school: pupil `student`; relative `guardian` if a pupil names them
  legal guardian, else `relative`; staff with the `DIR` function there (or the National_DIR
  profile) `principal`; teachers and librarians `teacher`; other staff `aide`;
- enrollment: a pupil in their class/groups as `student`; a teacher in what they teach (and their
  classes/groups) as `teacher`; a principal in a class as `administrator`.

sourcedIds: users are directory jointures, orgs UAIs; classes, courses,
enrollments and roles are UUIDv5 of what identifies them (school, kind,
code, school year, jointure), so the same directory gives the same ids.
Demographics and agents (relatives) are not given: no catalogue attribute
entitles an app to them.

`dateLastModified`: provisioning does not yet keep when each record last
changed, so every entity carries the time the view was built. A delta
consumer filtering on `dateLastModified>…` then gets everything again: never
a change missed.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import orjson
from sqlalchemy import Connection, distinct, func, select

from ..adapters import tables as t
from ..adapters.queries import catalogue, uai_map
from .apps import App

UNDISCLOSED = "ext:undisclosed"  # a required role the app may not receive (no `profiles` attribute)
_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:relais:oneroster")

# Course codes of the two kinds of class, as the GAR calls them.
COURSE_CODES = {"homeroom": "DIVISION", "scheduled": "GROUPE"}
_COURSE_TITLES = {"homeroom": "Divisions", "scheduled": "Groupes"}

ClassKey = tuple[str, str, str]  # (UAI, classType, code)


def _id(*parts: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, "\x1f".join(parts)))


@dataclass(frozen=True)
class SchoolYear:
    """A French school year: from 1 September to the next 1 September (excluded)."""

    start: date

    @classmethod
    def containing(cls, day: date) -> SchoolYear:
        return cls(date(day.year if day.month >= 9 else day.year - 1, 9, 1))

    @property
    def end(self) -> date:
        return date(self.start.year + 1, 9, 1)

    @property
    def title(self) -> str:
        return f"{self.start.year}-{self.start.year + 1}"

    @property
    def sourced_id(self) -> str:
        return f"schoolyear-{self.title}"


def class_id(year: SchoolYear, uai: str, class_type: str, code: str) -> str:
    """The sourcedId of a class: a class and a group of one school may share a code, a year reuses codes."""
    return _id("class", year.title, uai, class_type, code)


def course_id(year: SchoolYear, uai: str, class_type: str) -> str:
    return _id("course", year.title, uai, class_type)


def enrollment_id(year: SchoolYear, jointure: str, class_sourced_id: str) -> str:
    return _id("enrollment", year.title, jointure, class_sourced_id)


def role_id(jointure: str, uai: str) -> str:
    return _id("role", jointure, uai)


@dataclass(frozen=True)
class Account:
    """A directory person the app may see, with the schools (UAI) of their grants of its resources."""

    record: dict[str, Any]
    uais: tuple[str, ...]

    @property
    def jointure(self) -> str:
        return self.record["jointure"]


@dataclass
class Walked:
    """One account as OneRoster: the user, its enrollments, the classes it makes visible."""

    user: dict[str, Any]
    enrollments: list[dict[str, Any]] = field(default_factory=list)
    classes: set[ClassKey] = field(default_factory=set)


class AppView:
    """What one app may see of provisioning, as OneRoster 1.2 entities (REST/JSON shape).

    `base_url` prefixes the `href` of references (the rostering service root,
    e.g. https://host/ims/oneroster/rostering/v1p2); the CSV binding uses the
    sourcedIds alone. Reads go through `conn`; accounts are streamed, so only
    classes and schools (small) are held in memory.
    """

    def __init__(self, conn: Connection, app: App, *, now: datetime | None = None, base_url: str = ""):
        self.conn, self.app = conn, app
        moment = (now or datetime.now(UTC)).astimezone(UTC)
        self.modified = moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
        self.year = SchoolYear.containing(moment.date())
        self.base = base_url.rstrip("/")
        self.attributes = app.attributes(catalogue(conn))
        self._resources = sorted(app.resources)
        self._uai_of = uai_map(conn)
        self._schools: list[str] | None = None
        self._guardians: set[str] | None = None
        # Class and group labels a first-degree export gives (ENTPersonClasses' fifth field), met while walking
        # accounts: a class's title, else its code.
        self._labels: dict[ClassKey, str] = {}

    # -- references ----------------------------------------------------------------
    def _ref(self, kind: str, collection: str, sourced_id: str) -> dict[str, str]:
        return {"href": f"{self.base}/{collection}/{sourced_id}", "sourcedId": sourced_id, "type": kind}

    def org_ref(self, uai: str) -> dict[str, str]:
        return self._ref("org", "orgs", uai)

    def _year_ref(self) -> dict[str, str]:
        return self._ref("academicSession", "academicSessions", self.year.sourced_id)

    def _uai(self, structure: str | None) -> str | None:
        return self._uai_of.get(structure) if structure else None

    # -- what the app is entitled to ------------------------------------------------
    def schools(self) -> list[str]:
        """UAIs of the structures where the app's resources are granted."""
        if self._schools is None:
            self._schools = [] if not self._resources else sorted(u for (u,) in self.conn.execute(
                select(t.grant.c.structure).distinct().where(t.grant.c.resource.in_(self._resources))))
        return self._schools

    def count_accounts(self) -> int:
        if not self._resources:
            return 0
        return self.conn.execute(
            select(func.count(distinct(t.grant.c.person)))
            .select_from(t.grant.join(t.person, t.person.c.jointure == t.grant.c.person))
            .where(t.grant.c.resource.in_(self._resources))).scalar_one()

    def accounts(self, person: str | None = None) -> Iterator[Account]:
        """The accounts the app may see, by jointure, streamed (persons no longer in the directory are left out)."""
        if not self._resources:
            return
        self._legal_guardians()  # before the stream: one query at a time on the connection
        q = (select(t.person.c.jointure, t.person.c.data, t.grant.c.structure)
             .join(t.grant, t.grant.c.person == t.person.c.jointure)
             .where(t.grant.c.resource.in_(self._resources))
             .order_by(t.person.c.jointure, t.grant.c.structure))
        if person is not None:
            q = q.where(t.person.c.jointure == person)
        rows = self.conn.execute(q.execution_options(yield_per=2000))
        for _jointure, grouped in itertools.groupby(rows, key=lambda r: r.jointure):
            group = list(grouped)
            yield Account(orjson.loads(group[0].data), tuple(sorted({r.structure for r in group})))

    def _legal_guardians(self) -> set[str]:
        """The visible relatives that some pupil names as legal guardian (a scan of pupils, only if there are any)."""
        if self._guardians is None:
            self._guardians = set()
            if "profiles" in self.attributes and self._resources:
                relatives = {j for (j,) in self.conn.execute(
                    select(t.person.c.jointure).distinct().join(t.grant, t.grant.c.person == t.person.c.jointure)
                    .where(t.grant.c.resource.in_(self._resources), t.person.c.category == "PersRelEleve"))}
                if relatives:
                    for (data,) in self.conn.execute(select(t.person.c.data).where(t.person.c.category == "Eleve")):
                        for m in orjson.loads(data).get("memberships") or ():
                            if m["kind"] == "relative" and m.get("legal_guardian") and m["person"] in relatives:
                                self._guardians.add(m["person"])
        return self._guardians

    # -- the mapping ----------------------------------------------------------------
    def role(self, record: dict[str, Any], uai: str) -> str:
        """The account's OneRoster role in one school (`ext:undisclosed` without the `profiles` attribute)."""
        if "profiles" not in self.attributes:
            return UNDISCLOSED
        profiles = set(record.get("profiles") or ())
        if record.get("category") == "Eleve" or "National_ELV" in profiles:
            return "student"
        if record.get("category") == "PersRelEleve" or "National_TUT" in profiles:
            return "guardian" if record["jointure"] in self._legal_guardians() else "relative"
        functions = {m["code"] for m in record.get("memberships") or ()
                     if m["kind"] == "function" and self._uai(m.get("structure")) == uai}
        if "DIR" in functions:
            return "principal"
        if profiles & {"National_ENS", "National_DOC"}:
            return "teacher"
        if "National_DIR" in profiles:
            return "principal"
        return "aide"

    def _sections(self, account: Account) -> dict[ClassKey, bool]:
        """Visible classes and groups of an account -> whether it teaches there."""
        out: dict[ClassKey, bool] = {}
        for m in account.record.get("memberships") or ():
            kind = m["kind"]
            scope = m.get("scope") if kind == "teaching" else kind
            if scope not in ("class", "group") or ("classes" if scope == "class" else "groups") not in self.attributes:
                continue
            uai = self._uai(m.get("structure"))
            if uai not in account.uais:
                continue
            key = (uai, "homeroom" if scope == "class" else "scheduled", m["code"])
            out[key] = out.get(key, False) or kind == "teaching"
            if m.get("label"):
                self._labels[key] = m["label"]
        return out

    def walk(self, account: Account) -> Walked:
        rec, a = account.record, self.attributes
        roles = {uai: self.role(rec, uai) for uai in account.uais}
        user: dict[str, Any] = {
            "sourcedId": account.jointure, "status": "active", "dateLastModified": self.modified,
            "enabledUser": "true",
            "givenName": (rec.get("first_name") or "") if "first_name" in a else "",
            "familyName": (rec.get("last_name") or "") if "last_name" in a else "",
            # One role per school, so each is that school's primary role.
            "roles": [{"roleType": "primary", "role": roles[u], "org": self.org_ref(u)} for u in account.uais],
        }
        home = self._uai(rec.get("structure"))
        if "structure" in a and home in account.uais:
            user["primaryOrg"] = self.org_ref(home)
        if "email" in a and rec.get("email"):
            user["email"] = rec["email"]
        grade = rec.get("mef") or _level(rec)
        if "mef" in a and grade:
            user["grades"] = [grade]  # the MEF code, or a first-degree pupil's level: the deployment's vocabulary
        out = Walked(user)
        for (uai, ctype, code), teaches in sorted(self._sections(account).items()):
            out.classes.add((uai, ctype, code))
            role = self._enrollment_role(roles[uai], teaches)
            if role is None:
                continue
            cid = class_id(self.year, uai, ctype, code)
            out.enrollments.append({
                "sourcedId": enrollment_id(self.year, account.jointure, cid), "status": "active",
                "dateLastModified": self.modified, "user": self._ref("user", "users", account.jointure),
                "class": self._ref("class", "classes", cid), "school": self.org_ref(uai), "role": role,
            })
        return out

    @staticmethod
    def _enrollment_role(user_role: str, teaches: bool) -> str | None:
        if user_role == UNDISCLOSED:
            return UNDISCLOSED
        if user_role == "student":
            return "student"
        if teaches or user_role == "teacher":
            return "teacher"
        if user_role == "principal":
            return "administrator"
        return None  # an aide in a class: OneRoster enrollments have no such role

    def walked(self, person: str | None = None) -> Iterator[Walked]:
        for account in self.accounts(person):
            yield self.walk(account)

    # -- entities ---------------------------------------------------------------------
    def orgs(self) -> list[dict[str, Any]]:
        uais = self.schools()
        names: dict[str, str] = {}
        if uais:
            for uai, data in self.conn.execute(select(t.structure.c.uai, t.structure.c.data)
                                               .where(t.structure.c.uai.in_(uais))):
                names[uai] = orjson.loads(data).get("name") or uai
        return [{"sourcedId": u, "status": "active", "dateLastModified": self.modified, "name": names.get(u, u),
                 "type": "school", "identifier": u} for u in uais]

    def academic_sessions(self) -> list[dict[str, Any]]:
        y = self.year
        return [{"sourcedId": y.sourced_id, "status": "active", "dateLastModified": self.modified, "title": y.title,
                 "startDate": y.start.isoformat(), "endDate": y.end.isoformat(), "type": "schoolYear",
                 "schoolYear": str(y.end.year)}]

    def class_entity(self, key: ClassKey) -> dict[str, Any]:
        uai, ctype, code = key
        return {"sourcedId": class_id(self.year, uai, ctype, code), "status": "active",
                "dateLastModified": self.modified, "title": self._labels.get(key, code), "classCode": code,
                "classType": ctype,
                "course": self._ref("course", "courses", course_id(self.year, uai, ctype)),
                "school": self.org_ref(uai), "terms": [self._year_ref()]}

    def course_entity(self, uai: str, ctype: str) -> dict[str, Any]:
        return {"sourcedId": course_id(self.year, uai, ctype), "status": "active", "dateLastModified": self.modified,
                "title": f"{_COURSE_TITLES[ctype]} {self.year.title}", "schoolYear": self._year_ref(),
                "courseCode": COURSE_CODES[ctype], "org": self.org_ref(uai)}

    def classes(self, keys: Iterable[ClassKey]) -> list[dict[str, Any]]:
        return [self.class_entity(k) for k in sorted(set(keys))]

    def courses(self, keys: Iterable[ClassKey]) -> list[dict[str, Any]]:
        return [self.course_entity(u, c) for u, c in sorted({(u, c) for u, c, _code in keys})]

    def all_classes(self) -> set[ClassKey]:
        keys: set[ClassKey] = set()
        if {"classes", "groups"} & self.attributes:
            for account in self.accounts():
                keys.update(self._sections(account))
        return keys


def _level(record: dict[str, Any]) -> str | None:
    """A first-degree pupil's level (ENTEleveNiveau) as a grade: its code, else its label."""
    level = (record.get("first_degree") or {}).get("level") or {}
    return level.get("code") or level.get("label")

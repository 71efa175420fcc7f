"""Read-side queries other services need (exposed over RPC by the `Directory` facade, api.py).

Every function takes a SQLAlchemy `Connection` and returns plain dicts
(canonical Person / Structure records, as in the bus contracts), so the same
functions serve the RPC entrypoint, the command line and tests.
"""

from __future__ import annotations

import orjson
from sqlalchemy import Connection, bindparam, func, or_, select

from ..rules.search_keys import search_key
from . import tables

p, m, s = tables.person, tables.membership, tables.structure

# What logins ask (the sso matches and describes every login with these): built once, since building and
# keying a statement costs more than SQLite takes to run it.
_PERSON = select(p.c.data).where(p.c.jointure == bindparam("b_jointure"))
_STRUCTURE_KEY = (s.c.jointure == bindparam("b_key")) | (s.c.uai == bindparam("b_uai"))
_STRUCTURE = select(s.c.data).where(_STRUCTURE_KEY).order_by(s.c.jointure)
_STRUCTURE_JOINTURES = select(s.c.jointure).where(_STRUCTURE_KEY)
# By SIECLE id alone, the structure checked afterwards: the id's index finds one or two rows, while a
# planner without statistics (SQLite never analysed) would rather walk the structure's hundreds of pupils.
_PUPILS = (select(p.c.structure, p.c.data)
           .where(p.c.category == "Eleve", p.c.struct_rattach_id == bindparam("b_id"))
           .order_by(p.c.jointure))
# A first-degree pupil (ONDE has no SIECLE id) by INE, the id their EduConnect vector carries: pupils without
# a SIECLE id only, so a second-degree pupil is never found by another id than their SIECLE one.
_PUPILS_1D = (select(p.c.structure, p.c.data)
              .where(p.c.category == "Eleve", p.c.ine == bindparam("b_ine"), p.c.struct_rattach_id.is_(None))
              .order_by(p.c.jointure))
_NAMED_AMONG = (select(p.c.data)
                .where(p.c.jointure.in_(bindparam("b_jointures", expanding=True)),
                       p.c.last_key == bindparam("b_last"), p.c.first_key == bindparam("b_first"))
                .order_by(p.c.jointure))
_CHILDREN = (select(p.c.data)
             .where(p.c.jointure.in_(select(m.c.person).where(m.c.kind == "relative",
                                                               m.c.other == bindparam("b_relative"))))
             .order_by(p.c.jointure))


def _records(conn: Connection, where) -> list[dict]:
    return _loaded(conn.execute(select(p.c.data).where(where).order_by(p.c.jointure)))


def _loaded(rows) -> list[dict]:
    return [orjson.loads(r.data)["record"] for r in rows]


def _structure_jointures(conn: Connection, structure: str) -> list[str]:
    """A structure named by jointure or by UAI (case-insensitive) -> its jointure(s)."""
    rows = conn.execute(_STRUCTURE_JOINTURES, {"b_key": structure, "b_uai": structure.upper()}).all()
    return [r.jointure for r in rows] or [structure]


def person(conn: Connection, jointure: str) -> dict | None:
    """A person by jointure (the AAF join key), with raw attributes under `attributes`."""
    row = conn.execute(_PERSON, {"b_jointure": jointure}).first()
    if row is None:
        return None
    data = orjson.loads(row.data)
    return {**data["record"], "attributes": data["attributes"]}


def pupils_by_attachment(conn: Connection, struct_rattach_id: str, uai: str) -> list[dict]:
    """Pupils by SIECLE id (`ENTEleveStructRattachId`) within the structure of that UAI; a first-degree
    pupil, who has none, by INE (`ENTEleveINE`) instead."""
    structures = set(_structure_jointures(conn, uai))
    found = _loaded(r for r in conn.execute(_PUPILS, {"b_id": struct_rattach_id}) if r.structure in structures)
    if found:
        return found
    ine = struct_rattach_id.strip().upper()
    return [rec for rec in _loaded(r for r in conn.execute(_PUPILS_1D, {"b_ine": ine}) if r.structure in structures)
            if "first_degree" in rec]


def parents_of_pupil(conn: Connection, pupil_struct_rattach_id: str, uai: str, last_name: str,
                     first_name: str) -> list[dict]:
    """Relatives of the pupil (SIECLE id + UAI) whose names match, ignoring case and accents."""
    pupils = pupils_by_attachment(conn, pupil_struct_rattach_id, uai)
    relatives = {mm["person"] for pu in pupils for mm in pu["memberships"] if mm["kind"] == "relative"}
    if not relatives:
        return []
    return _loaded(conn.execute(_NAMED_AMONG, {"b_jointures": sorted(relatives), "b_last": search_key(last_name),
                                               "b_first": search_key(first_name)}))


def by_ine(conn: Connection, ine: str) -> list[dict]:
    return _records(conn, p.c.ine == ine.strip().upper())


def by_email(conn: Connection, email: str) -> list[dict]:
    """Staff by academic e-mail, ignoring case."""
    return _records(conn, p.c.email_key == search_key(email))


def search(conn: Connection, text: str, *, structures: list[str] | None = None, limit: int = 50) -> list[dict]:
    """People whose jointure or INE is `text`, or whose last name (or "first last", "last first") starts
    with it, ignoring case and accents; attached to one of `structures` (jointures or UAIs) when given.

    At most `limit`, sorted by jointure. Names are matched on the stored search keys (no index on them yet:
    a scan of the person table on a large directory; the console's benchmark says how long).
    """
    wanted = text.strip()
    key = search_key(wanted)
    if not key:
        return []
    within = None
    if structures is not None:
        within = p.c.structure.in_([j for st in structures for j in _structure_jointures(conn, st)])

    def found(where) -> list[dict]:
        where = where if within is None else where & within
        return _loaded(conn.execute(select(p.c.data).where(where).order_by(p.c.jointure).limit(limit)))

    # An identifier first, each through its index; names only when it is none (their keys have no index).
    exact = found(or_(p.c.jointure == wanted, p.c.ine == wanted.upper()))
    if exact:
        return exact
    clauses = [p.c.last_key.startswith(key, autoescape=True)]
    first, _, rest = key.partition(" ")
    if rest:
        clauses += [(p.c.first_key == first) & p.c.last_key.startswith(rest, autoescape=True),
                    (p.c.last_key == first) & p.c.first_key.startswith(rest, autoescape=True)]
    return found(or_(*clauses))


def members(conn: Connection, structure: str, *, class_code: str | None = None,
            group_code: str | None = None) -> list[dict]:
    """Members of a structure (jointure or UAI), or of one of its classes or groups.

    For a class or group this includes the teachers who teach it.
    """
    structures = _structure_jointures(conn, structure)
    if class_code is None and group_code is None:
        jointures = select(m.c.person).where(m.c.kind == "structure", m.c.structure.in_(structures))
        return _records(conn, p.c.jointure.in_(jointures))
    scope, code = ("class", class_code) if class_code is not None else ("group", group_code)
    jointures = select(m.c.person).where(
        m.c.structure.in_(structures), m.c.code == code, m.c.kind.in_((scope, "teaching"))
    )
    # The table does not keep a teaching's scope (class or group): check it on the record.
    return [
        rec for rec in _records(conn, p.c.jointure.in_(jointures))
        if any(mm.get("structure") in structures and mm.get("code") == code
               and (mm["kind"] == scope or (mm["kind"] == "teaching" and mm["scope"] == scope))
               for mm in rec["memberships"])
    ]


def children(conn: Connection, relative: str) -> list[dict]:
    """Pupils that name this person as a relative."""
    return _loaded(conn.execute(_CHILDREN, {"b_relative": relative}))


def legal_guardians(conn: Connection, pupil: str) -> list[dict]:
    """The pupil's relatives flagged as legal guardians (those in the directory)."""
    jointures = select(m.c.other).where(m.c.kind == "relative", m.c.person == pupil, m.c.legal_guardian.is_(True))
    return _records(conn, p.c.jointure.in_(jointures))


def structure(conn: Connection, key: str) -> dict | None:
    """A structure by jointure or UAI."""
    row = conn.execute(_STRUCTURE, {"b_key": key, "b_uai": key.upper()}).first()
    return orjson.loads(row.data)["record"] if row else None


def family_counts(conn: Connection) -> dict[str, int]:
    """How many records of each family the directory holds (persons by category)."""
    counts = dict(conn.execute(select(p.c.category, func.count()).group_by(p.c.category)).all())
    counts["EtabEducNat"] = conn.execute(select(func.count()).select_from(tables.structure)).scalar_one()
    counts["MefEducNat"] = conn.execute(select(func.count()).select_from(tables.mef)).scalar_one()
    counts["MatiereEducNat"] = conn.execute(select(func.count()).select_from(tables.subject)).scalar_one()
    return counts


def last_import(conn: Connection) -> dict | None:
    row = conn.execute(
        select(tables.import_run.c.report).order_by(tables.import_run.c.started_at.desc()).limit(1)
    ).first()
    return orjson.loads(row.report) if row else None


def last_import_run(conn: Connection) -> dict | None:
    """The last import's id, status and times (for `relais status`), or None before the first."""
    run = tables.import_run
    row = conn.execute(select(run.c.id, run.c.status, run.c.started_at, run.c.finished_at)
                       .order_by(run.c.started_at.desc()).limit(1)).first()
    return None if row is None else {
        "import_id": row.id, "status": row.status,
        "started_at": row.started_at.isoformat() if row.started_at else None,
        "finished_at": row.finished_at.isoformat() if row.finished_at else None}

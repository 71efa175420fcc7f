"""The demo's contract-end step: the sample academy changes ENT vendor and the vault proves nothing was lost.

"ENT A", the outgoing vendor, is a real WebDAV server (wsgidav: documents) and a real CalDAV/CardDAV server
(Radicale: calendars, contacts), seeded for a pupil of the sample academy, one of their legal guardians and a
teacher of their class (jointures from the directory the demo imported). "ENT B", the incoming vendor, is the
same pair of servers, empty. Both run in this process's threads, on TCP ports of 127.0.0.1.

Then the step runs the commands a collectivité would run, as subprocesses of the ``relais`` CLI, for each
connector (webdav, caldav, carddav): ``relais vault export --from`` ENT A, ``relais vault import --to`` ENT B,
``relais vault verify`` ENT A / vault / ENT B, each with ``--json``; then ``relais vault handover`` writes the
pack the collectivité signs (a bag per person, handover.json, the summary in HTML and PDF, with the verify
reports), and the Library of Congress's ``bagit`` validates every bag. The vault is the local store under the
demo's data folder. The step prints per vertical what went through and verify's last line, and succeeds only
when verify finds nothing lost, altered or unverified anywhere.

The phases are separate so that a test can damage ENT B between import and verify (``after_import``) and see
verify name the damage: the zero-loss report is computed, not printed.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import subprocess
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from . import RELAIS

USER = "relais"  # the service account each ENT gives the migration
# connector -> (vertical, which of the ENT's servers it talks to)
CONNECTORS = {"webdav": ("documents", "webdav"), "caldav": ("calendars", "dav"), "carddav": ("contacts", "dav")}


@dataclass
class Ent:
    """One vendor's servers: where they keep their data on disk, their URLs, the connectors' configurations."""

    name: str
    folder: Path
    urls: dict[str, str] = field(default_factory=dict)  # server (webdav, dav) -> base URL
    configs: dict[str, Path] = field(default_factory=dict)  # connector -> its configuration file
    password_env: str = ""
    password: str = field(default="", repr=False)

    @property
    def documents(self) -> Path:
        """wsgidav's folder: ``<owner>/<path>`` is an owner's document."""
        return self.folder / "documents"

    @property
    def dav(self) -> Path:
        return self.folder / "dav"


@dataclass(frozen=True)
class People:
    pupil: dict[str, Any]
    parent: dict[str, Any]
    teacher: dict[str, Any]
    uai: str | None = None  # the pupil's school: its shared space is the owner ``structure:<UAI>``
    class_code: str | None = None

    def by_role(self) -> dict[str, dict[str, Any]]:
        return {"pupil": self.pupil, "parent": self.parent, "teacher": self.teacher}


def run(engine, tenant: str, data_dir: Path, pupil_jointure: str, *,
        after_import: Callable[[Ent], None] | None = None) -> bool:
    """Move the pupil's, a parent's and a teacher's data from ENT A to ENT B through the vault.

    ``data_dir`` is the ``RELAIS_DATA_DIR`` of the commands (the vault's local store is under it); the ENTs
    keep their files in ``data_dir/contract-end``. ``after_import`` is called with ENT B once every import
    is done, before verify. True when every command succeeded and verify found nothing lost, altered or
    unverified in any vertical.
    """
    people = _people(engine, tenant, pupil_jointure)
    if people is None:
        return False
    base = Path(data_dir) / "contract-end"
    env = _environment(engine, tenant, Path(data_dir))
    ent_a, ent_b = Ent("ENT A", base / "ent-a"), Ent("ENT B", base / "ent-b")
    with contextlib.ExitStack() as stack:
        for ent in (ent_a, ent_b):
            _start(stack, ent, env, base)
        counts = seed(ent_a, people)
        print(f"ENT A (outgoing): WebDAV {ent_a.urls['webdav']} and CalDAV/CardDAV {ent_a.urls['dav']}, holding "
              + ", ".join(f"{n} {v}" for v, n in counts.items()) + f" of pupil {people.pupil['jointure']}, "
              f"parent {people.parent['jointure']} and teacher {people.teacher['jointure']}"
              + (f", and their school {people.uai}'s shared space" if people.uai else ""))
        print(f"ENT B (incoming): WebDAV {ent_b.urls['webdav']} and CalDAV/CardDAV {ent_b.urls['dav']}, empty")
        print(f"for each connector C of {', '.join(CONNECTORS)}, with the configurations in {base}:\n"
              "  relais vault export --from C --config ent-a-C.yaml --json\n"
              "  relais vault import --to C --config ent-b-C.yaml --json\n"
              "  relais vault verify --source C --source-config ent-a-C.yaml --target C --target-config ent-b-C.yaml "
              "--json")
        moved = {name: transfer(name, ent_a, ent_b, env) for name in CONNECTORS}
        if after_import is not None:
            after_import(ent_b)
        checks = {name: check(name, ent_a, ent_b, env) for name in CONNECTORS}
    ok = True
    for name in CONNECTORS:
        ok = _summary(name, moved[name], checks[name]) and ok
    return handover(base, env, checks) and ok


# ---- the people and the servers ----------------------------------------------------------------------------


def _people(engine, tenant: str, pupil_jointure: str) -> People | None:
    """The pupil, their first legal guardian, and a teacher of their class (else a teacher of their school, else
    a member of its staff)."""
    from services.directory.api import Directory

    directory = Directory(engine, tenant)
    pupil = directory.get_person(pupil_jointure)
    guardians = directory.legal_guardians(pupil_jointure) if pupil else []
    if pupil is None or not guardians:
        print(f"pupil {pupil_jointure} or their legal guardians are not in the directory")
        return None
    classes = [m["code"] for m in pupil["memberships"] if m["kind"] == "class"]
    in_class = directory.members(pupil["structure"], class_code=classes[0]) if classes else []
    teachers = sorted((p for p in in_class if p["category"] == "PersEducNat"), key=lambda p: p["jointure"]) + sorted(
        (p for p in directory.members(pupil["structure"]) if p["category"] == "PersEducNat"),
        key=lambda p: ("National_ENS" not in p["profiles"], p["jointure"]))
    if not teachers:
        print(f"no teacher nor staff in pupil {pupil_jointure}'s class or structure {pupil['structure']}")
        return None
    school = directory.get_structure(pupil["structure"]) or {}
    return People(pupil, guardians[0], teachers[0], school.get("uai"), classes[0] if classes else None)


def _environment(engine, tenant: str, data_dir: Path) -> dict[str, str]:
    """The commands' environment: the demo's database and tenant, the vault's local store under data_dir."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELAIS_VAULT_S3_")}
    env.update({"RELAIS_DATA_DIR": str(data_dir), "RELAIS_TENANT": tenant,
                "RELAIS_DATABASE_URL": engine.url.render_as_string(hide_password=False)})
    return env


def _start(stack: contextlib.ExitStack, ent: Ent, env: dict[str, str], base: Path) -> None:
    """Start the ENT's two servers (Basic auth, a password made now) and write its connectors' configurations:
    the password is only in the environment the commands get, as the configuration names it."""
    from connectors.testing import radicale_app, serve_wsgi, wsgidav_app

    ent.password = secrets.token_urlsafe(16)
    ent.password_env = f"RELAIS_DEMO_{ent.folder.name.upper().replace('-', '_')}_PASSWORD"
    env[ent.password_env] = ent.password
    users = {USER: ent.password}
    ent.urls["webdav"] = stack.enter_context(serve_wsgi(wsgidav_app(ent.documents, users))) + "/"
    ent.urls["dav"] = stack.enter_context(serve_wsgi(radicale_app(ent.dav, users))) + "/"
    for name, (_vertical, server) in CONNECTORS.items():
        path = base / f"{ent.folder.name}-{name}.yaml"
        path.write_text(yaml.safe_dump({
            "url": ent.urls[server], "auth": {"type": "basic", "username": USER, "password_env": ent.password_env},
            "workers": 4, "retries": {"attempts": 3, "deadline": 30}}, sort_keys=False), encoding="utf-8")
        ent.configs[name] = path


# ---- what ENT A holds ----------------------------------------------------------------------------------------


def _binary(kind: str, seed: str, size: int) -> bytes:
    """Deterministic bytes shaped like a PDF or a JPEG: the right header and trailer, incompressible body."""
    body = hashlib.shake_256(seed.encode()).digest(size)
    if kind == "pdf":
        return (b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Length " + str(size).encode() + b" >>\nstream\n"
                + body + b"\nendstream\nendobj\n%%EOF\n")
    return b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + body + b"\xff\xd9"


WORKSHEET = _binary("pdf", "fiche-exercices-RUS1TERM", 18_000)  # handed out by the teacher, kept by the pupil


def documents(people: People) -> dict[str, dict[str, bytes | None]]:
    """Each person's document tree at ENT A, and the pupil's school's shared space (owner ``structure:<UAI>``,
    contracts/vault/SPEC.md §1): path -> bytes, None for an empty folder."""
    shared: dict[str, dict[str, bytes | None]] = {}
    if people.uai:
        shared[f"structure:{people.uai}"] = {
            f"Classes/{people.class_code or 'classe'}/Sortie au musée - programme.pdf":
                _binary("pdf", "programme-sortie", 12_000),
            "Établissement/Règlement intérieur.txt": "Article 1 : le respect de chacun s’impose à tous.\n".encode(),
        }
    return shared | {
        people.pupil["jointure"]: {
            "Mes documents/Cours/Mathématiques/Théorème de Pythagore.pdf": _binary("pdf", "pythagore", 42_000),
            "Mes documents/Cours/Fiche d'exercices.pdf": WORKSHEET,
            "Mes documents/notes.txt": "Rendre l'exposé lundi.\nPenser au cahier de TP.\n".encode(),
            "Mes documents/Exposé été 2013/brouillon à relire.txt":
                "Le musée des Beaux-Arts a rouvert en 2013 ; œuvres à citer : …\n".encode(),
            "Mes documents/Projets": None,
            "Photos/sortie-musée.jpg": _binary("jpeg", "sortie-musee", 60_000),
        },
        people.teacher["jointure"]: {
            "Cours/Fiche d'exercices.pdf": WORKSHEET,
            "Cours/Progression 2013-2014.txt": "Septembre : révisions\nOctobre : fonctions affines\n".encode(),
            "Copies à corriger": None,
        },
        people.parent["jointure"]: {
            "Documents administratifs/Autorisation de sortie.pdf": _binary("pdf", "autorisation", 9_000),
            "Documents administratifs/Courriers": None,
        },
    }


def _event(uid: str, summary: str, start: str, end: str, component: str = "VEVENT") -> bytes:
    when = (f"DTSTART;TZID=Europe/Paris:{start}\r\nDTEND;TZID=Europe/Paris:{end}\r\n" if component == "VEVENT"
            else f"DUE;TZID=Europe/Paris:{end}\r\n")
    return (f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//ENT A//Agenda//FR\r\nBEGIN:{component}\r\nUID:{uid}\r\n"
            f"DTSTAMP:20130902T080000Z\r\n{when}SUMMARY:{summary}\r\nEND:{component}\r\nEND:VCALENDAR\r\n").encode()


def _card(uid: str, person: Mapping[str, Any], role: str) -> bytes:
    last, first = person["last_name"] or "", person["first_name"] or ""
    return (f"BEGIN:VCARD\r\nVERSION:4.0\r\nUID:urn:uuid:{uid}\r\nFN:{first} {last}\r\nN:{last};{first};;;\r\n"
            f"NOTE:{role}\r\nEND:VCARD\r\n").encode()


def collections(people: People) -> dict[str, dict[str, dict[str, tuple[dict[str, str], dict[str, bytes]]]]]:
    """Calendars and address books at ENT A: vertical -> owner -> collection -> (properties, objects)."""
    pupil, parent, teacher = people.pupil["jointure"], people.parent["jointure"], people.teacher["jointure"]
    return {
        "calendars": {
            pupil: {"emploi-du-temps": ({"displayname": "Emploi du temps", "color": "#3366ffff"}, {
                "francais.ics": _event("francais-lundi@ent-a", "Français — salle 12", "20130909T080000",
                                       "20130909T090000"),
                "sortie-musee.ics": _event("sortie-musee@ent-a", "Sortie au musée des Beaux-Arts", "20131015T133000",
                                           "20131015T170000")})},
            teacher: {"cours": ({"displayname": "Mes cours", "description": "Cours et conseils de classe"}, {
                "conseil-de-classe.ics": _event("conseil-t1@ent-a", "Conseil de classe", "20131205T170000",
                                                "20131205T190000"),
                "copies.ics": _event("copies-t1@ent-a", "Corriger les copies", "", "20131010T180000", "VTODO")})},
            parent: {"famille": ({"displayname": "Famille"}, {
                "reunion.ics": _event("reunion-parents@ent-a", "Réunion parents-professeurs", "20131121T180000",
                                      "20131121T200000")})},
        },
        "contacts": {
            parent: {"contacts": ({"displayname": "Contacts"}, {
                "professeur.vcf": _card("0b6f9a52-61c3-4d0e-9a0e-3f2f5a2b7c11", people.teacher, "professeur"),
                "enfant.vcf": _card("5d0c4e8e-8a7b-4a8f-b0f5-2a7c6e9d1f22", people.pupil, "enfant")})},
            teacher: {"classe": ({"displayname": "Parents d'élèves"}, {
                "parent.vcf": _card("9e3a1c77-2b4d-4f6a-8c1e-7d5b3a9f0e33", people.parent, "parent d'élève")})},
        },
    }


def seed(ent: Ent, people: People) -> dict[str, int]:
    """Fill ENT A the way its vendor would have it: documents on wsgidav's disk (one name in NFD, as a Mac
    leaves it), calendars and address books created and filled over CalDAV/CardDAV. Returns items per vertical."""
    import requests

    from connectors.webdav.multistatus import APPLE_ICAL, CALDAV, CARDDAV, DAV, mkcol_body

    counts = {"documents": 0, "calendars": 0, "contacts": 0}
    for owner, tree in documents(people).items():
        for rel, data in tree.items():
            on_disk = unicodedata.normalize("NFD", rel) if "Exposé" in rel else rel
            path = ent.documents / owner / on_disk
            if data is None:
                path.mkdir(parents=True, exist_ok=True)
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)
        counts["documents"] += _tree_items(tree)
    kinds = {"calendars": ((CALDAV, "calendar"), "text/calendar", {"displayname": (DAV, "displayname"),
             "color": (APPLE_ICAL, "calendar-color"), "description": (CALDAV, "calendar-description")}),
             "contacts": ((CARDDAV, "addressbook"), "text/vcard", {"displayname": (DAV, "displayname")})}
    with requests.Session() as http:
        http.auth = (USER, ent.password)
        http.trust_env = False

        def call(method: str, url: str, **kwargs) -> None:
            r = http.request(method, url, timeout=10, **kwargs)
            if r.status_code >= 300:
                raise RuntimeError(f"{ent.name}: {method} {url} answered {r.status_code} while seeding")

        homes: set[str] = set()
        for vertical, owners in collections(people).items():
            resourcetype, media_type, props = kinds[vertical]
            for owner, colls in owners.items():
                home = f"{ent.urls['dav']}{owner}/"
                if home not in homes:
                    call("MKCOL", home)
                    homes.add(home)
                for name, (properties, objects) in colls.items():
                    body = mkcol_body([resourcetype], {props[k]: v for k, v in properties.items()})
                    call("MKCOL", f"{home}{name}/", data=body, headers={"Content-Type": "application/xml"})
                    for obj, data in objects.items():
                        call("PUT", f"{home}{name}/{obj}", data=data,
                             headers={"Content-Type": f"{media_type}; charset=utf-8"})
                    counts[vertical] += 1 + len(objects)
    return counts


def _tree_items(tree: Mapping[str, bytes | None]) -> int:
    """Items of a document tree: its files and every folder (each once, however many files it holds)."""
    folders = {str(parent) for rel in tree for parent in Path(rel).parents if str(parent) != "."}
    folders |= {rel for rel, data in tree.items() if data is None}
    return len(folders) + sum(1 for data in tree.values() if data is not None)


# ---- the commands --------------------------------------------------------------------------------------------


@dataclass
class Command:
    """One ``relais`` command run: its words, exit status, and the JSON report it printed (None: none)."""

    words: list[str]
    status: int
    report: dict[str, Any] | None
    stderr: str


def relais(words: list[str], env: Mapping[str, str]) -> Command:
    """Run ``relais <words> --json`` as its own process and read its report from stdout (warnings go to stderr)."""
    done = subprocess.run(RELAIS + words + ["--json"], env=dict(env), capture_output=True, text=True, timeout=600)
    try:
        report = json.loads(done.stdout)
    except ValueError:
        report = None
    return Command(words, done.returncode, report, done.stderr)


def transfer(name: str, ent_a: Ent, ent_b: Ent, env: Mapping[str, str]) -> tuple[Command, Command]:
    """``relais vault export`` from ENT A then ``relais vault import`` into ENT B, through connector ``name``."""
    exported = relais(["vault", "export", "--from", name, "--config", str(ent_a.configs[name])], env)
    imported = relais(["vault", "import", "--to", name, "--config", str(ent_b.configs[name])], env)
    return exported, imported


def check(name: str, ent_a: Ent, ent_b: Ent, env: Mapping[str, str]) -> Command:
    """``relais vault verify`` of ENT A, the vault and ENT B: every item downloaded and hashed on both ENTs."""
    return relais(["vault", "verify", "--source", name, "--source-config", str(ent_a.configs[name]),
                   "--target", name, "--target-config", str(ent_b.configs[name])], env)


def handover(base: Path, env: Mapping[str, str], checks: Mapping[str, Command]) -> bool:
    """``relais vault handover``: the pack the collectivité signs (a bag per person, handover.json, the summary in
    HTML and PDF), with the verify reports of every connector; then the Library of Congress's ``bagit`` validates
    every bag. True when the pack names no miss and every bag validates."""
    reports = []
    for name, verified in checks.items():
        if verified.report is not None:
            path = base / f"verify-{name}.json"
            path.write_text(json.dumps(verified.report, ensure_ascii=False), encoding="utf-8")
            reports += ["--verify-report", str(path)]
    folder = base / "handover"
    print(f"relais vault handover --to {folder} --by 'Démo Relais, opérateur' "
          + " ".join(f"--verify-report verify-{name}.json" for name in checks) + " --json")
    made = relais(["vault", "handover", "--to", str(folder), "--by", "Démo Relais, opérateur", *reports], env)
    pack = made.report
    if pack is None or "files" not in pack:
        _no_report(made)
        return False
    print(f"  handover pack in {folder}: {pack['persons']} person(s), {pack['structures']} structure(s), "
          f"{pack['items']} items, {pack['bytes']:,} bytes in {pack['bags']['bags']} bags; lost: {pack['lost']}")
    for miss in pack["misses"]:
        print(f"  MISS {miss['kind']} {miss['owner'] or ''} {miss['what']}: {miss['why']}")
    print(f"  to sign: {pack['files']['summary-fr.pdf']} (and .html); seal of the bags {pack['bags_seal_sha256']}")
    valid = _bagit(folder / "bags")  # what the vault holds, in bags, whatever the ENTs lost
    return made.status == 0 and pack["lost"] == 0 and valid


def _bagit(folder: Path) -> bool:
    """Every bag validated by ``bagit`` (the Library of Congress's tool, not ours): fixity, completeness, oxum."""
    import bagit  # type: ignore[import-untyped]  # no type hints

    bags = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    failed = []
    for path in bags:
        try:
            bagit.Bag(str(path)).validate()
        except bagit.BagError as exc:
            failed.append(f"{path.name}: {exc}")
    print(f"  bags validated by bagit (Library of Congress): {len(bags) - len(failed)} of {len(bags)}")
    for line in failed:
        print(f"  INVALID {line}")
    return bool(bags) and not failed


# ---- the summary ---------------------------------------------------------------------------------------------


def _no_report(command: Command) -> None:
    print(f"  `relais {' '.join(command.words[:3])}` printed no report (exit status {command.status}): "
          + (command.stderr.strip().splitlines() or ["no message"])[-1])


def _summary(name: str, moved: tuple[Command, Command], verified: Command) -> bool:
    """Print what went through connector ``name`` and what verify found; True when nothing was lost."""
    vertical = CONNECTORS[name][0]
    exported, imported = moved
    print(f"{vertical} ({name}):")
    e, i, v = exported.report, imported.report, verified.report
    if e is None or i is None or v is None:
        _no_report(next(c for c in (exported, imported, verified) if c.report is None))
        return False
    run = e["this_run"]
    persons = len({p["person"] for p in v["persons"] if p.get("source", {}).get("items")})
    print(f"  exported from ENT A: {e['items']} items of {persons} persons, {e['bytes']:,} bytes, "
          f"{run['uploaded']} contents stored in the vault"
          + (f" ({run['deduplicated']} already there: stored once)" if run["deduplicated"] else "")
          + f"; {e['failed']} failed")
    print(f"  imported into ENT B: {i['items']} items ({i['created']} created, {i['updated']} updated, "
          f"{i['skipped_unchanged']} unchanged), {i['bytes']:,} bytes; {i['failed']} failed")
    for failure in e["failures"] + i["failures"]:
        print(f"  FAILED {failure['person']} {failure['vertical']} {failure['item']!r}: {failure['error']}")
    totals = v["totals"].get(vertical, {})
    print("  verify: " + ", ".join(f"{side} {totals.get(side, {}).get('items', 0)} items "
                                   f"{totals.get(side, {}).get('bytes', 0):,} bytes"
                                   for side in ("source", "vault", "target")))
    for error in v["errors"]:
        print(f"  CANNOT LIST {error['side']} {error['person'] or '(every person)'}: {error['error']}")
    for f in v["findings"]:
        print(f"  {f['verdict'].upper()} {f['person']} {f['vertical']} {f['path'] or f['item']!r}: {f['detail']}")
    altered = sum(1 for f in v["findings"] if f["problem"] == "altered")
    print(f"  lost: {v['lost']}, altered: {altered}, unverified: {v['unverified']}, extra: {v['extra']}"
          + (" — nothing lost" if v["ok"] and not altered else ""))
    return (exported.status == 0 and imported.status == 0 and verified.status == 0 and e["state"] == "completed"
            and i["state"] == "completed" and v["ok"] and v["lost"] == 0 and v["unverified"] == 0 and altered == 0)

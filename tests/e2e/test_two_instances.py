"""Several instances at once (issue 17): two `relais serve sso` and two `relais serve provisioning` processes on
one PostgreSQL database and one RabbitMQ vhost, with logins, directory imports and rule changes interleaved.

While the directory imports pupils wave after wave (its events relayed by whichever instance holds the
outbox lock) and an operator loads rules and a raised quota with `relais provisioning load` (a fifth
process), pupils log in through a pysaml2 IdP, every hop of each login sent to the next SSO instance as a
round-robin load balancer would; each login's CAS tickets are validated on both instances, and raced on
both at once. At the end, against the database and the bus:
- no session lost: every login that succeeded has its session, readable from either instance;
- no ticket valid twice: each service ticket validated exactly once, whichever instance got it first, and
  one `sso.cas.ticket.validated` event each;
- no grant given twice: one `granted` history line and one `provisioning.grant.created` event for each
  grant held (and one more of each for each revoked), and a full evaluation afterwards finds nothing to change;
- no quota exceeded: the per-user workbook and textbook have fewer seats per school than pupils, the
  per-structure language licence fewer schools than there are; each wave opens new schools, whose empty
  pools both consumers fill at the same time (without `services/provisioning/adapters/write_locks.py`,
  the language licence ended up held by 4 schools of 2 in most runs).
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit, urlunsplit

import amqp
import orjson
import pytest
import requests
from lxml import etree
from sqlalchemy import func, select

from relais.bus.contracts import subscriptions
from relais.bus.outbox import read_events
from relais.bus.tables import processed_events
from relais.bus.topology import EVENTS_EXCHANGE, declare_events_exchange
from relais.config import parse_amqp_uri
from services.directory.importing.options import ImportOptions
from services.directory.importing.run import DirectoryImporter
from services.provisioning.adapters import tables as pt
from services.sso.config import parse_config
from services.sso.sp.config import parse_saml
from services.sso.sp.messages import sp_metadata
from services.sso.tables import session as session_t
from tests import aaf_builder as aaf
from tests.ops_helpers import RELAIS, Service, free_port
from tests.saml_peers import AFFILIATION, FRED_CT_ID, Browser, CasApps, PysamlIdp, key_pair

DICO, TEXTBOOK, WORKBOOK = "ark:/1/dico", "ark:/1/manuel", "ark:/1/cahier"
LANGUAGES, ATLAS = "ark:/1/langues", "ark:/1/atlas"
SEATS, MORE_SEATS = 3, 5  # the textbook's seats per school, before and after the operator raises them
WORKBOOK_SEATS = 2  # the workbook's seats per school, never changed
LANGUAGE_SCHOOLS = 2  # the language licence is per structure: 2 schools of them all may hold it
WAVES, PER_WAVE = 5, 48  # pupils imported while the rest goes on (the first wave before: they log in)
SCHOOLS_PER_WAVE = 4  # each wave opens new schools: empty pools the two consumers fill at once
LOGINS = 6  # per login thread; two threads
WAIT_S = 90  # the longest the test waits for what must happen (a bound, never a measure)
CAS_NS = {"cas": "http://www.yale.edu/tp/cas"}


def pupils_of(wave: int) -> list[str]:
    return [f"W{wave}P{i:03d}" for i in range(PER_WAVE)]


def schools_of(wave: int) -> dict[str, str]:
    """The wave's schools: jointure -> UAI."""
    return {f"W{wave}S{k}": f"07{wave:02d}{k:03d}A" for k in range(SCHOOLS_PER_WAVE)}


def school_of(jointure: str) -> str:
    wave, number = jointure[1:].split("P")
    return f"W{wave}S{int(number) % SCHOOLS_PER_WAVE}"


def uai_of(school: str) -> str:
    return schools_of(int(school[1:].split("S")[0]))[school]


def catalogue(seats: int) -> dict:
    return {"resources": [
        {"id": DICO, "title": "Dictionnaire", "publisher": "E", "licence": "unlimited"},
        {"id": TEXTBOOK, "title": "Manuel", "publisher": "E", "licence": "per-user", "quota": seats},
        {"id": WORKBOOK, "title": "Cahier", "publisher": "E", "licence": "per-user", "quota": WORKBOOK_SEATS},
        {"id": LANGUAGES, "title": "Langues", "publisher": "E", "licence": "per-structure",
         "quota": LANGUAGE_SCHOOLS},
        {"id": ATLAS, "title": "Atlas", "publisher": "E", "licence": "unlimited"}]}


def rules(*, atlas: bool) -> dict:
    chosen = [{"id": "dico", "resource": DICO, "profiles": ["National_ELV"]},
              {"id": "manuel", "resource": TEXTBOOK, "profiles": ["National_ELV"]},
              {"id": "cahier", "resource": WORKBOOK, "profiles": ["National_ELV"]},
              {"id": "langues", "resource": LANGUAGES, "profiles": ["National_ELV"]}]
    if atlas:
        chosen.append({"id": "atlas", "resource": ATLAS, "structures": list(schools_of(0).values())[:2],
                       "profiles": ["National_ELV"]})
    return {"rules": chosen}


class Bus:
    """Taps on the vhost: queues bound like provisioning's (what it must handle) and to the events checked."""

    TAPS = {"tap.provisioning": subscriptions()["provisioning"],
            "tap.checked": ("provisioning.grant.#", "sso.login.succeeded", "sso.cas.ticket.validated")}

    def __init__(self, amqp_uri: str):
        self.conn = amqp.Connection(**parse_amqp_uri(amqp_uri).connection_kwargs(), heartbeat=0)
        self.conn.connect()
        channel = declare_events_exchange(self.conn.channel())
        for queue, patterns in self.TAPS.items():
            channel.queue_declare(queue, durable=True, auto_delete=False)
            for pattern in patterns:
                channel.queue_bind(queue, EVENTS_EXCHANGE, pattern)
        self.channel = channel

    def waiting(self, queue: str) -> int:
        return self.channel.queue_declare(queue, passive=True)[1]

    def take_all(self, queue: str) -> list[dict]:
        out = []
        while (message := self.channel.basic_get(queue, no_ack=True)) is not None:
            out.append(orjson.loads(message.body))
        return out

    def close(self) -> None:
        self.conn.close()


class Balancer(Browser):
    """A browser behind a round-robin load balancer: each request to an SSO instance goes to the next one."""

    def __init__(self, instances: list[str], user: str, turn: int):
        super().__init__()
        self.instances, self.turn = instances, turn  # where the first request goes: the next instance
        self.headers["X-Test-User"] = user  # which pupil the IdP logs in (the IdP serves every thread)

    def send(self, request, **kwargs):  # every request, redirects followed included, goes through here
        parts = urlsplit(request.url)
        if f"{parts.scheme}://{parts.netloc}" in self.instances:
            self.turn += 1
            request.url = urlunsplit(parts._replace(netloc=urlsplit(self.instances[self.turn % 2]).netloc))
        return super().send(request, **kwargs)


class PupilsIdp(PysamlIdp):
    """The pysaml2 IdP answering for the pupil each browser names; one answer at a time (pysaml2's cipher
    swap is not thread-safe)."""

    def __init__(self, folder: Path):
        self._lock = threading.Lock()
        self._local = threading.local()
        super().__init__(folder)

    @property  # type: ignore[override]
    def user(self):
        return getattr(self._local, "user", None)

    @user.setter
    def user(self, value) -> None:
        self._local.user = value

    def dispatch(self, request):
        jointure = request.headers.get("X-Test-User")
        if jointure:
            self.user = (f"nid-{jointure}", {AFFILIATION: ["eleve2d"], "FrEduCtRefId": [f"{{AAF}}01|X|{jointure}"],
                                             FRED_CT_ID: [f"fe-{jointure}"]})
        with self._lock:
            return super().dispatch(request)


def validate(base: str, ticket: str, service: str) -> str | None:
    """The user a CAS 2.0 validation on `base` answers, or None when refused."""
    r = requests.get(base + "/cas/serviceValidate", params={"ticket": ticket, "service": service}, timeout=30)
    assert r.status_code == 200, r.text
    node = etree.fromstring(r.content, parser=etree.XMLParser(resolve_entities=False, no_network=True))
    found = node.xpath("//cas:authenticationSuccess/cas:user/text()", namespaces=CAS_NS)
    return str(found[0]) if found else None


def raced(bases: list[str], ticket: str, service: str) -> list[str | None]:
    """The same ticket validated on every instance at once."""
    results: list[str | None] = []
    start = threading.Barrier(len(bases))

    def one(base: str) -> None:
        start.wait()
        results.append(validate(base, ticket, service))

    threads = [threading.Thread(target=one, args=(b,)) for b in bases]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT_S)
    return results


def ticket_at(browser: requests.Session, base: str, service: str) -> str | None:
    """An ST from instance `base` for the browser's session, or None if it has no session there."""
    r = browser.get(base + "/cas/login", params={"service": service}, allow_redirects=False, timeout=30)
    location = r.headers.get("Location", "")
    return parse_qs(urlsplit(location).query)["ticket"][0] if location.startswith(service) else None


class Logins:
    """Pupils logging in and their tickets validated, on both instances; every answer noted for the end."""

    def __init__(self, instances: list[str], service: str):
        self.instances, self.service = instances, service
        self.browsers: dict[str, Balancer] = {}
        self.validations: dict[str, list[str | None]] = {}  # ticket -> every answer it got (a user or None)
        self.problems: list[str] = []
        self.lock = threading.Lock()

    def run(self, jointures: list[str]) -> None:
        try:
            for n, jointure in enumerate(jointures):
                self.one(jointure, n)
        except Exception as exc:  # noqa: BLE001 - said at the end, in the test's thread
            self.problems.append(f"login thread: {type(exc).__name__}: {exc}")

    def one(self, jointure: str, n: int) -> None:
        browser = Balancer(self.instances, jointure, n)  # odd and even logins take each hop on either instance
        r = browser.go(f"{self.instances[n % 2]}/cas/login?service={quote(self.service, safe='')}")
        if r.text != "app page":
            self.problems.append(f"{jointure}: login ended on {r.url} ({r.status_code}): {r.text[:300]}")
            return
        self.browsers[jointure] = browser
        first = parse_qs(urlsplit(r.url).query)["ticket"][0]
        one, other = self.instances[n % 2], self.instances[(n + 1) % 2]
        self.note(first, [validate(one, first, self.service), validate(other, first, self.service)])
        for base in self.instances:  # the session is there on both; a ticket from each, raced on both
            ticket = ticket_at(browser, base, self.service)
            if ticket is None:
                self.problems.append(f"{jointure}: no session on {base} after the login")
                continue
            self.note(ticket, raced(self.instances, ticket, self.service))

    def note(self, ticket: str, answers: list[str | None]) -> None:
        with self.lock:
            self.validations[ticket] = answers


def relais(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([RELAIS, *args], env=env, capture_output=True, text=True, timeout=WAIT_S)


def load(env: dict[str, str], folder: Path, name: str, document: dict) -> None:
    """What the operator runs: `relais provisioning load FILE` (a process of its own, during the rest)."""
    path = folder / f"{name}.json"
    path.write_text(json.dumps(document))
    done = relais(env, "provisioning", "load", str(path), "--json")
    assert done.returncode == 0, f"relais provisioning load {name}: {done.returncode}\n{done.stdout}\n{done.stderr}"


class Directory:
    """The directory importing AAF files into the shared database; its events leave through the services' relays."""

    def __init__(self, engine, folder: Path):
        self.engine, self.folder, self.files = engine, folder, 0

    def run(self, kind: str, family: str, *records: str) -> None:
        self.files += 1
        path = aaf.write(self.folder, f"P_{kind}_202609{self.files:02d}_{family}_0000.xml", *records)
        report = DirectoryImporter(self.engine, "test", ImportOptions()).run([path])
        assert report.ok, report.to_dict()

    def wave(self, wave: int, *, schools_kind: str = "Delta") -> None:
        """The wave's schools, and once provisioning knows them (it reconciles no one when a school comes), its
        pupils."""
        schools = schools_of(wave)
        self.run(schools_kind, "EtabEducNat", *(aaf.school(s, uai) for s, uai in schools.items()))
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            with self.engine.connect() as conn:
                known = set(conn.execute(select(pt.structure.c.jointure)
                                         .where(pt.structure.c.jointure.in_(list(schools)))).scalars())
            if known == set(schools):
                break
            time.sleep(0.1)
        else:
            raise AssertionError(f"provisioning did not learn the schools of wave {wave} in {WAIT_S}s")
        self.run("Delta", "Eleve", *(aaf.pupil(j, structure=school_of(j), klass="6A") for j in pupils_of(wave)))


def processed(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(processed_events)
                            .where(processed_events.c.consumer == "provisioning")).scalar_one()


def settled(engine, bus: Bus, consumers: list[Service]) -> int:
    """Wait for every event provisioning receives to be handled (the outbox empty, each one processed)."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            pending = sum(1 for _ in read_events(conn))
        routed = bus.waiting("tap.provisioning")
        if not pending and processed(engine) == routed:
            return routed
        time.sleep(0.2)
    logs = "\n".join(c.logs()[-3000:] for c in consumers)
    raise AssertionError(f"not settled in {WAIT_S}s: {processed(engine)} of {bus.waiting('tap.provisioning')} "
                         f"events processed\n{logs}")


def sso_config(folder: Path, base: str, idp: PysamlIdp, apps: CasApps) -> Path:
    key, cert = key_pair("sp-2025").write(folder / "keys", "sp-2025")
    document = {
        "base_url": base, "cookie": {"secure": False}, "lifetimes": {"service_ticket": WAIT_S},
        "services": [{"id": "app", "prefix": f"{apps.url}/app/", "attributes": ["uid"]}],
        "saml": {"keys": [{"id": "sp-2025", "key_file": str(key), "cert_file": str(cert)}],
                 "requested_attributes": ["FrEduCtPersonAffiliation", "FrEduCtId", "FrEduCtRefId", "FrEduVecteur"],
                 "idps": [{"id": "educonnect", "kind": "educonnect", "label": "ÉduConnect",
                           "metadata_url": f"{idp.base}/idp/metadata"}]}}
    path = folder / "sso.json"
    path.write_text(json.dumps(document))
    settings = parse_saml(parse_config(document, "test").saml, where="test", base_url=base)
    assert settings is not None
    idp.trust_sp(sp_metadata(settings))
    return path


@pytest.mark.slow
def test_two_sso_and_two_provisioning_instances_at_once(pg_engine, amqp_uri, tmp_path):
    env = {"RELAIS_DATABASE_URL": pg_engine.url.render_as_string(hide_password=False), "RELAIS_AMQP_URI": amqp_uri,
           "RELAIS_TENANT": "test", "RELAIS_DATA_DIR": str(tmp_path / "var"), "RELAIS_SSO_SECRET": "s" * 40}
    bus = Bus(amqp_uri)  # before anything is published
    idp, apps = PupilsIdp(tmp_path), CasApps()
    ports = [free_port(), free_port()]
    instances = [f"http://127.0.0.1:{p}" for p in ports]
    config = sso_config(tmp_path, instances[0], idp, apps)  # one public URL for the deployment, as behind a balancer
    services = [Service("sso", {**env, "RELAIS_SSO_CONFIG": str(config), "RELAIS_HTTP_PORT": str(port)},
                        tmp_path / f"sso-{n}.log") for n, port in enumerate(ports)]
    services += [Service("provisioning", env, tmp_path / f"provisioning-{n}.log") for n in range(2)]
    consumers = services[2:]
    try:
        for svc in services:
            svc.wait_alive().wait_ready()
        directory = Directory(pg_engine, tmp_path)
        load(env, tmp_path, "catalogue", {**catalogue(SEATS), **rules(atlas=False)})
        directory.wave(0, schools_kind="Complet")

        # Everything at once: imports, rule and quota changes, logins on both instances.
        imported = [threading.Event() for _ in range(WAVES + 1)]
        imported[0].set()
        failures: list[str] = []

        def imports() -> None:
            try:
                for wave in range(1, WAVES + 1):
                    directory.wave(wave)
                    imported[wave].set()
            except BaseException as exc:  # noqa: BLE001 - said at the end
                failures.append(f"imports: {exc}")
                for event in imported:
                    event.set()

        def operator() -> None:
            try:
                imported[1].wait(WAIT_S)
                load(env, tmp_path, "atlas", rules(atlas=True))
                imported[3].wait(WAIT_S)
                load(env, tmp_path, "more-seats", catalogue(MORE_SEATS))
                imported[4].wait(WAIT_S)
                load(env, tmp_path, "no-atlas", rules(atlas=False))
            except BaseException as exc:  # noqa: BLE001 - said at the end
                failures.append(f"operator: {exc}")

        logins = Logins(instances, f"{apps.url}/app/home")
        login_pupils = pupils_of(0)[:2 * LOGINS]
        threads = [threading.Thread(target=imports), threading.Thread(target=operator),
                   threading.Thread(target=logins.run, args=(login_pupils[0::2],)),
                   threading.Thread(target=logins.run, args=(login_pupils[1::2],))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(3 * WAIT_S)
        assert not any(t.is_alive() for t in threads), "a thread of the test is still running"
        assert not failures, failures
        settled(pg_engine, bus, consumers)
        handled = [c.metric("relais_messages_total", consumer="provisioning", outcome="handled") for c in consumers]
        assert all(handled), handled  # both consumers took a share

        # No session lost; no ticket valid twice.
        assert not logins.problems, logins.problems
        assert sorted(logins.browsers) == sorted(login_pupils)
        for jointure, browser in logins.browsers.items():
            for base in instances:
                assert ticket_at(browser, base, logins.service) is not None, (jointure, base)
        for ticket, answers in logins.validations.items():
            assert len([a for a in answers if a is not None]) == 1, (ticket[:8], answers)
            assert {a for a in answers if a is not None} <= set(login_pupils), answers
        with pg_engine.connect() as conn:
            sessions = Counter(j for (j,) in conn.execute(select(session_t.c.person_jointure)))
        assert sessions == Counter(login_pupils)

        # No grant given twice, no quota exceeded; the bus says the same.
        everyone = [j for wave in range(WAVES + 1) for j in pupils_of(wave)]
        with pg_engine.connect() as conn:
            grants = Counter((p, r, s) for p, r, s in conn.execute(
                select(pt.grant.c.person, pt.grant.c.resource, pt.grant.c.structure)))
            history = Counter((p, r, a) for p, r, a in conn.execute(
                select(pt.history.c.person, pt.history.c.resource, pt.history.c.action)))
        by_resource = Counter(r for _p, r, _s in grants)
        assert {p for p, r, _s in grants if r == DICO} == set(everyone)
        every_school = [uai for w in range(WAVES + 1) for uai in schools_of(w).values()]
        workbook = Counter(s for _p, r, s in grants if r == WORKBOOK)
        assert workbook == {uai: WORKBOOK_SEATS for uai in every_school}, workbook
        textbook = Counter(s for _p, r, s in grants if r == TEXTBOOK)
        assert textbook == {uai: MORE_SEATS for uai in every_school}, textbook
        languages = {s for _p, r, s in grants if r == LANGUAGES}
        assert len(languages) == LANGUAGE_SCHOOLS, languages
        assert by_resource[LANGUAGES] == sum(1 for j in everyone if uai_of(school_of(j)) in languages)
        assert by_resource[ATLAS] == 0
        checked = bus.take_all("tap.checked")
        events = Counter((e["type"], e["payload"].get("person"), e["payload"].get("resource")) for e in checked)
        for (person, resource, _s) in grants:
            assert history[(person, resource, "granted")] - history[(person, resource, "revoked")] == 1
            assert events[("provisioning.grant.created", person, resource)] == 1 + events[
                ("provisioning.grant.revoked", person, resource)]
        assert all(n == 1 for (kind, _p, _r), n in events.items() if kind.startswith("provisioning.grant."))
        assert events.total() and any(r == ATLAS for (_k, _p, r) in events)  # the atlas rule came and went
        granted_events = sum(n for (kind, _p, _r), n in events.items() if kind == "provisioning.grant.created")
        revoked_events = sum(n for (kind, _p, _r), n in events.items() if kind == "provisioning.grant.revoked")
        assert granted_events - revoked_events == len(grants)
        assert sum(n for (_p, _r, a), n in history.items() if a == "granted") == granted_events
        assert sum(n for (kind, _p, _r), n in events.items() if kind == "sso.login.succeeded") == len(login_pupils)
        assert sum(n for (kind, _p, _r), n in events.items() if kind == "sso.cas.ticket.validated") == len(
            logins.validations)

        # Nothing was left half done: a full evaluation now finds nothing to change.
        done = relais(env, "provisioning", "evaluate", "--json", "--no-publish")
        assert done.returncode == 0, done.stderr
        changes = {k: v for k, v in json.loads(done.stdout).items() if k in ("granted", "revoked", "deferred", "kept")}
        assert not any(changes.values()), done.stdout
    finally:
        for svc in services:
            svc.stop()
        bus.close()
        idp.stop()
        apps.serving.stop()

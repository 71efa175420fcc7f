"""Provisioning: rules, quotas, departures, manual grants, bad input, over the real directory events."""

from __future__ import annotations

from datetime import timedelta

import amqp
import orjson
import pytest
from sqlalchemy import func, inspect, select

from relais.bus import contracts
from relais.bus.consumer import ERROR_HEADER
from relais.bus.envelope import Event
from relais.bus.outbox import read_events, unpack
from relais.bus.publisher import ConfirmedPublisher, OutgoingMessage
from relais.bus.tables import outbox
from relais.bus.topology import consumer_queues, declare_consumer
from relais.config import parse_amqp_uri
from relais.db import writer
from relais.runtime.runner import event_consumer
from services.directory.importing.options import ImportOptions
from services.directory.importing.run import DirectoryImporter
from services.provisioning.adapters import tables as pt
from services.provisioning.adapters.queries import ruleset, store_config
from services.provisioning.grants.catalogue import CatalogueError
from services.provisioning.grants.rules import RuleError
from services.provisioning.handlers import full_evaluation
from services.provisioning.handlers.configuration import load_catalogue, load_rules
from services.provisioning.handlers.departures import sweep_departures
from services.provisioning.handlers.explain import explain
from services.provisioning.handlers.full_evaluation import evaluate_all
from services.provisioning.handlers.manual_grants import grant_manually, revoke_manually
from services.provisioning.handlers.work import Context, ProvisioningError
from services.provisioning.process import consumer
from tests import aaf_builder as aaf

UAI = "0750001A"
CATALOGUE = {"resources": [
    {"id": "ark:/49591/maths6", "title": "Maths 6e", "publisher": "Éditions A", "licence": "per-user",
     "profiles": ["National_ELV"], "levels": ["1001"], "attributes": ["id", "classes"]},
    {"id": "ark:/49591/atlas", "title": "Atlas", "publisher": "B", "licence": "per-user", "quota": 2},
    {"id": "ark:/49591/dico", "title": "Dictionnaire", "publisher": "C", "licence": "unlimited"},
]}
RULES = {"grace_days": 30, "rules": [
    {"id": "maths-6a", "resource": "ark:/49591/maths6", "structures": [UAI], "classes": ["6A"]},
    {"id": "atlas-6e", "resource": "ark:/49591/atlas", "structures": [UAI], "mefs": ["1001"]},
    {"id": "dico-teachers", "resource": "ark:/49591/dico", "profiles": ["National_ENS"]},
]}


def pupil(j, klass="6A", mef="10010012110"):
    return aaf.pupil(j, structure="S1", klass=klass, ENTEleveMEF=mef)


def teacher(j, functions=(), **extra):
    return aaf.add("PersEducNat", j, ENTPersonJointure=j, sn=f"Prof{j}", givenName="Anne", ENTPersonStructRattach="S1",
                   PersEducNatPresenceDevantEleves="O", ENTAuxEnsClassesMatieres=["S1$6A$MATHS"],
                   ENTPersonFonctions=list(functions), mail=f"prof{j}@ac-test.fr", **extra)


class World:
    """A directory (real importer) whose events reach provisioning through its real consumer handler."""

    def __init__(self, engine, tmp_path):
        self.engine, self.tmp, self.n = engine, tmp_path, 0
        self.consumer = event_consumer(consumer("test"), engine)

    def directory(self, *records, kind="Delta", family="Eleve"):
        self.n += 1
        path = aaf.write(self.tmp, f"P_{kind}_202609{self.n:02d}_{family}_0000.xml", *records)
        report = DirectoryImporter(self.engine, "test", ImportOptions(validate_events=True)).run([path])
        assert report.ok, report.to_dict()
        self.deliver()

    def deliver(self):
        """Hand every directory event of the outbox to provisioning, as the broker would."""
        with writer(self.engine).begin() as conn:
            rows = [r for r in conn.execute(select(outbox.c.seq, outbox.c.event_id, outbox.c.type, outbox.c.body,
                                                   outbox.c.events).order_by(outbox.c.seq))
                    if r.type.startswith("directory.")]
            conn.execute(outbox.delete().where(outbox.c.seq.in_([r.seq for r in rows])))
        receives = contracts.subscriptions()["provisioning"]  # what the broker routes to its queue
        messages = [m for r in rows for m in unpack(*r) if m.type in receives]  # the directory packs its events
        self.delivered = getattr(self, "delivered", {})
        for m in messages:
            self.delivered[m.message_id] = m.type
        for m in messages:
            assert self.consumer.handle(m.body).status == "handled"

    def load(self, catalogue=CATALOGUE, rules=RULES, **ctx):
        with writer(self.engine).begin() as conn:
            work = Context("test", **ctx)
            if catalogue:
                load_catalogue(conn, catalogue, work)
            if rules:
                load_rules(conn, rules, work)
        return work

    def grants(self, person=None):
        q = select(pt.grant.c.person, pt.grant.c.resource, pt.grant.c.cause)
        if person:
            q = q.where(pt.grant.c.person == person)
        with self.engine.connect() as conn:
            return {(p, r): c for p, r, c in conn.execute(q)}

    def events(self, type_):
        with self.engine.connect() as conn:
            return read_events(conn, type_)  # a full evaluation packs its events, many to a row

    def run(self, fn, *args, **ctx):
        with writer(self.engine).begin() as conn:
            work = Context("test", **ctx)
            fn(conn, *args, work)
        return work


@pytest.fixture
def world(engine, tmp_path):
    w = World(engine, tmp_path)
    w.directory(aaf.school("S1", UAI), kind="Complet", family="EtabEducNat")
    w.directory(teacher("T1"), teacher("D1", functions=["S1$DIR$DIRECTION"]), kind="Complet", family="PersEducNat")
    w.directory(pupil("1"), pupil("2"), pupil("3", klass="6B"), pupil("4", klass="5A", mef="10110001110"),
                kind="Complet")
    return w


def test_rules_grant_with_causes_and_minimised_accounts(world):
    world.load()
    g = world.grants()
    assert g[("1", "ark:/49591/maths6")] == "rule:maths-6a" and g[("2", "ark:/49591/maths6")] == "rule:maths-6a"
    assert ("3", "ark:/49591/maths6") not in g  # 6B
    assert ("4", "ark:/49591/atlas") not in g  # 5e: MEF 1011…
    assert g[("T1", "ark:/49591/dico")] == "rule:dico-teachers" and ("1", "ark:/49591/dico") not in g
    created = world.events("provisioning.grant.created")
    for ev in created:
        contracts.validate_event(ev)
    maths = next(e for e in created if e["payload"]["resource"] == "ark:/49591/maths6")
    assert maths["payload"]["account"] == {"id": maths["payload"]["person"], "classes": ["6A"]}  # nothing more
    dico = next(e for e in created if e["payload"]["resource"] == "ark:/49591/dico")
    assert dico["payload"]["account"] == {"id": dico["payload"]["person"]}  # the default: the least
    with world.engine.connect() as conn:
        why = explain(conn, "1")
    assert {(x["resource"], x["cause"]) for x in why["grants"]} >= {("ark:/49591/maths6", "rule:maths-6a")}
    assert [x["action"] for x in why["history"]].count("granted") == len(why["grants"])


def test_quota_refuses_tells_managers_and_gives_freed_seats(world):
    world.load()
    atlas = {p for (p, r) in world.grants() if r == "ark:/49591/atlas"}
    assert len(atlas) == 2  # 3 pupils of 6e, 2 seats
    [refused] = {"1", "2", "3"} - atlas
    [ev] = world.events("provisioning.quota.exhausted")
    contracts.validate_event(ev)
    assert ev["payload"]["refused"] == [refused] and ev["payload"]["managers"] == ["D1"]
    assert ev["payload"]["quota"] == 2 and ev["payload"]["held"] == 2
    with world.engine.connect() as conn:
        assert explain(conn, refused)["refusals"][0]["reason"].startswith("quota exhausted")
    # Evaluating again does not tell the managers twice.
    world.run(evaluate_all)
    assert len(world.events("provisioning.quota.exhausted")) == 1
    # A holder moves to 5e (no longer selected): the seat goes to the one refused.
    holder = sorted(atlas)[0]
    world.directory(aaf.modify("Eleve", holder, ENTEleveMEF="10110001110"))
    atlas_now = {p for (p, r) in world.grants() if r == "ark:/49591/atlas"}
    assert atlas_now == (atlas - {holder}) | {refused}
    with world.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(pt.refusal)).scalar_one() == 0


def test_freed_seats_go_to_the_oldest_refusal_first(world):
    """Two accounts wait for one seat: the one refused first gets it, though the other's jointure sorts first."""
    world.load()
    assert {p for (p, r) in world.grants() if r == "ark:/49591/atlas"} == {"1", "2"}  # 3 refused
    world.directory(pupil("0"))  # arrives later: refused too, after 3
    assert ("0", "ark:/49591/atlas") not in world.grants()
    assert {p for p, r, _u in _refusals(world.engine) if r == "ark:/49591/atlas"} == {"0", "3"}
    world.directory(aaf.modify("Eleve", "1", ENTEleveMEF="10110001110"))  # a holder moves to 5e: one seat frees
    atlas = {p for (p, r) in world.grants() if r == "ark:/49591/atlas"}
    assert atlas == {"2", "3"}
    assert [(p, r) for p, r, _u in _refusals(world.engine)] == [("0", "ark:/49591/atlas")]  # still waiting


def test_class_change_and_departure_with_grace(world):
    world.load()
    world.directory(aaf.modify("Eleve", "2", ENTEleveClasses="S1$6B"))
    assert ("2", "ark:/49591/maths6") not in world.grants()
    revoked = world.events("provisioning.grant.revoked")
    [change] = [e for e in revoked if e["payload"] == {
        "person": "2", "resource": "ark:/49591/maths6", "structure": UAI,
        "cause": "no-longer-selected (rule:maths-6a)"}]
    # It cites the directory event that caused it.
    assert world.delivered[change["causation_id"]] == "directory.membership.changed"
    for e in revoked:
        contracts.validate_event(e)

    world.directory(aaf.delete("Eleve", "1"))  # leaves: kept during the grace period
    assert ("1", "ark:/49591/maths6") in world.grants()
    work = world.run(sweep_departures)
    assert work.counts["revoked"] == 0 and ("1", "ark:/49591/maths6") in world.grants()
    later = work.now + timedelta(days=31)
    world.run(sweep_departures, now=later)
    assert not world.grants("1")
    assert any(e["payload"]["person"] == "1" and e["payload"]["cause"] == "departure"
               for e in world.events("provisioning.grant.revoked"))


def test_back_within_grace_keeps_the_licence(world):
    world.load()
    world.directory(aaf.delete("Eleve", "1"))
    with world.engine.connect() as conn:
        assert explain(conn, "1")["grants"][0]["revoke_after"]
    world.directory(pupil("1"))
    with world.engine.connect() as conn:
        why = explain(conn, "1")
    assert all(g["revoke_after"] is None for g in why["grants"]) and why["grants"]
    assert "kept" in [x["action"] for x in why["history"]]


def test_manual_grants_need_a_resource_manager(world):
    world.load()
    with pytest.raises(ProvisioningError, match="not a resource manager"):
        world.run(grant_manually, "T1", "4", "ark:/49591/dico", UAI)
    world.run(grant_manually, "D1", "4", "ark:/49591/dico", UAI)
    assert world.grants("4")[("4", "ark:/49591/dico")] == "manual:D1"
    world.run(evaluate_all)  # rules do not take a manual grant back
    assert ("4", "ark:/49591/dico") in world.grants()
    with pytest.raises(ProvisioningError, match="change the rules"):
        world.run(revoke_manually, "D1", "T1", "ark:/49591/dico", UAI)
    world.run(revoke_manually, "D1", "4", "ark:/49591/dico", UAI)
    assert ("4", "ark:/49591/dico") not in world.grants()


@pytest.mark.parametrize("bad, message", [
    ({"rules": [{"id": "x", "resource": "ark:/49591/dico", "structures": ["9999999Z"]}]}, "structure 9999999Z"),
    ({"rules": [{"id": "x", "resource": "ark:/49591/dico", "structures": [UAI], "classes": ["6Z"]}]}, "class '6Z'"),
    ({"rules": [{"id": "x", "resource": "ark:/49591/nothing"}]}, "not in the catalogue"),
    ({"rules": [{"id": "x", "resource": "ark:/49591/dico", "colour": "red"}]}, "unknown keys"),
])
def test_bad_rules_change_nothing(world, bad, message):
    world.load()
    before = (world.grants(), len(world.events("provisioning.grant.created")))
    with pytest.raises(RuleError, match=message):
        world.load(catalogue=None, rules={**RULES, "rules": RULES["rules"] + bad["rules"]})
    assert (world.grants(), len(world.events("provisioning.grant.created"))) == before
    with world.engine.connect() as conn:
        assert [r.id for r in ruleset(conn).rules] == ["maths-6a", "atlas-6e", "dico-teachers"]


def test_a_class_no_account_is_in_is_found_by_the_workers_and_changes_nothing(world, monkeypatch):
    """Classes are checked while worker processes read the accounts; the error rolls everything back."""
    monkeypatch.setattr(full_evaluation, "CHUNK", 2)
    monkeypatch.setattr(full_evaluation, "PARALLEL_FROM", 1)  # workers; the pool index dropped, then rebuilt
    world.load()
    before = (world.grants(), len(world.events("provisioning.grant.created")))
    six_z = {"id": "x", "resource": "ark:/49591/dico", "structures": [UAI], "classes": ["6Z", "6A"]}
    with pytest.raises(RuleError, match="rule x: class '6Z' is not in " + UAI) as caught:
        world.load(catalogue=None, rules={**RULES, "rules": RULES["rules"] + [six_z]})
    assert "6A" not in str(caught.value)  # a class some account is in is found, whichever worker read it
    assert (world.grants(), len(world.events("provisioning.grant.created"))) == before
    assert "ix_prov_grant_pool" in {i["name"] for i in inspect(world.engine).get_indexes("prov_grant")}


def test_bad_catalogues_change_nothing(world):
    world.load()
    before = world.grants()
    no_licence = {"resources": CATALOGUE["resources"] + [{"id": "ark:/49591/x", "title": "X"}]}
    with pytest.raises(CatalogueError, match="no licence model"):
        world.load(catalogue=no_licence, rules=None)
    below = {"resources": [dict(r, quota=1) if r["id"] == "ark:/49591/atlas" else r for r in CATALOGUE["resources"]]}
    with pytest.raises(CatalogueError, match="below the 2 licences held"):
        world.load(catalogue=below, rules=None)
    assert world.grants() == before


def test_full_evaluation_in_a_worker_process_decides_as_in_one(world, monkeypatch):
    """The worker process prepares chunks; quotas are still taken in account order, events still made."""
    monkeypatch.setattr(full_evaluation, "CHUNK", 2)  # several chunks, prepared ahead of the writer
    monkeypatch.setattr(full_evaluation, "PARALLEL_FROM", 1)  # and, on SQLite, the pool index rebuilt at the end
    world.load()
    serial = world.grants()
    refused = {(p, r) for p, r, _u in _refusals(world.engine)}
    with writer(world.engine).begin() as conn:  # back to no grants, and rules without the atlas
        for table in (pt.grant, pt.history, pt.refusal, outbox):
            conn.execute(table.delete())
        store_config(conn, "rules", {**RULES, "rules": [r for r in RULES["rules"] if r["id"] != "atlas-6e"]})
    with writer(world.engine).begin() as conn:
        store_config(conn, "rules", RULES)  # not committed when the worker starts: it must get them from here
        work = Context("test", validate_events=True)
        evaluate_all(conn, work, workers=1)
    assert world.grants() == serial and work.counts["granted"] == len(serial)
    assert {(p, r) for p, r, _u in _refusals(world.engine)} == refused and refused  # the atlas quota refused one
    created = world.events("provisioning.grant.created")
    assert sorted((e["payload"]["person"], e["payload"]["resource"]) for e in created) == sorted(serial)
    assert len({e["id"] for e in created}) == len(created)
    with world.engine.connect() as conn:  # chunks where every grant was given: written as the worker packed them
        bodies = [bytes(b) for (b,) in conn.execute(select(outbox.c.body).where(outbox.c.events > 1))]
    assert bodies and all(b[:1] != b"{" for b in bodies)
    assert "ix_prov_grant_pool" in {i["name"] for i in inspect(world.engine).get_indexes("prov_grant")}


def _refusals(engine):
    with engine.connect() as conn:
        return conn.execute(select(pt.refusal.c.person, pt.refusal.c.resource, pt.refusal.c.structure)).all()


def test_per_structure_licences_count_structures(world):
    """A per-structure licence for one structure: the first school gets it, the second is refused."""
    world.directory(aaf.school("S1", UAI), aaf.school("S2", "0750002B"), kind="Complet", family="EtabEducNat")
    world.directory(aaf.pupil("9", structure="S2", klass="6A", ENTEleveMEF="10010012110"))
    labo = {"id": "ark:/49591/labo", "title": "Labo", "publisher": "D", "licence": "per-structure", "quota": 1}
    world.load(catalogue={"resources": CATALOGUE["resources"] + [labo]},
               rules={"rules": [{"id": "labo-pupils", "resource": "ark:/49591/labo", "profiles": ["National_ELV"]}]})
    held = {(p, u) for p, u in _grant_structures(world.engine, "ark:/49591/labo")}
    assert {u for _p, u in held} == {UAI}  # the first structure in account order: S1's pupils
    assert {p for p, _u in held} == {"1", "2", "3", "4"}
    [refusal] = [r for r in _refusals(world.engine) if r[1] == "ark:/49591/labo"]
    assert refusal == ("9", "ark:/49591/labo", "0750002B")
    with world.engine.connect() as conn:
        assert "licensed to 1 structure(s)" in explain(conn, "9")["refusals"][0]["reason"]


def _grant_structures(engine, resource):
    with engine.connect() as conn:
        return conn.execute(select(pt.grant.c.person, pt.grant.c.structure)
                            .where(pt.grant.c.resource == resource)).all()


def test_faulty_directory_events_are_dead_lettered_and_change_nothing(world, amqp_uri):
    """Through RabbitMQ, into `relais serve provisioning`'s consumer: the issue's faulty person (profiles a string,
    birth_date 31/12/2010, an extra is_admin), an update adding is_admin, an unknown type, and a good pupil."""
    world.load()
    with world.engine.connect() as conn:
        [(record,)] = conn.execute(select(pt.person.c.data).where(pt.person.c.jointure == "1")).all()
    good_person = {**orjson.loads(record), "jointure": "5"}

    def event(type_, payload):
        return Event(type=type_, payload=payload, source="relais.directory", tenant="test", correlation_id="c")

    faulty = {
        "payload.person.profiles: must be array":
            event("directory.person.created", {"person": {**good_person, "jointure": "6", "profiles": "National_ELV"}}),
        "payload.person.birth_date: must match pattern":
            event("directory.person.created", {"person": {**good_person, "jointure": "7", "birth_date": "31/12/2010"}}),
        "payload.person: additional property is_admin not allowed":
            event("directory.person.created", {"person": {**good_person, "jointure": "8", "is_admin": True}}),
        "payload.changes: additional property is_admin not allowed":
            event("directory.person.updated", {"jointure": "1", "category": "Eleve",
                                               "changes": {"is_admin": {"before": None, "after": True}}}),
        "event type directory.person.promoted is not one consumer provisioning receives":
            event("directory.person.promoted", {"jointure": "2"}),
    }
    good = event("directory.person.created", {"person": good_person})
    events = [*faulty.values(), good]
    params = parse_amqp_uri(amqp_uri)
    conn = amqp.Connection(**params.connection_kwargs())
    conn.connect()
    declare_consumer(conn.channel(), "provisioning", list(contracts.subscriptions()["provisioning"]))
    conn.close()
    unknown = events.pop(-2)  # no binding routes a type the contracts lack: put straight into the queue
    with ConfirmedPublisher(amqp_uri) as pub:
        pub.publish(OutgoingMessage(e.type, e.to_json(), e.id, e.type) for e in events)
    with ConfirmedPublisher(amqp_uri, exchange="") as pub:
        queue = consumer_queues("provisioning").main
        pub.publish([OutgoingMessage(queue, unknown.to_json(), unknown.id, unknown.type)])
    events.append(unknown)
    assert world.consumer.run(amqp_uri, max_messages=len(events), idle_timeout=10) == len(events)

    conn = amqp.Connection(**params.connection_kwargs())
    conn.connect()
    channel, dead = conn.channel(), {}
    while (m := channel.basic_get(consumer_queues("provisioning").dead_letter, no_ack=True)) is not None:
        dead[m.properties["message_id"]] = str(m.properties["application_headers"][ERROR_HEADER])
    conn.close()
    assert set(dead) == {e.id for e in faulty.values()}
    for reason, e in faulty.items():
        assert reason in dead[e.id] and "31/12/2010" not in dead[e.id], dead[e.id]
    with world.engine.connect() as conn:
        people = {j: orjson.loads(d) for j, d in conn.execute(select(pt.person.c.jointure, pt.person.c.data))}
    assert set(people) == {"T1", "D1", "1", "2", "3", "4", "5"}  # the good pupil in, none of the faulty ones
    assert all("is_admin" not in p for p in people.values())
    assert ("5", "ark:/49591/maths6") in world.grants("5")  # and applied as ever: granted by the rules

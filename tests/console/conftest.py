"""A console world for tests: the real SSO (SAML SP and CAS, `SpWorld`) in front of a pysaml2 agents' IdP,
a directory imported by its real importer whose events reach provisioning's real consumer, and the
console served as `relais serve console` serves it (cheroot), wired by app/bootstrap.py's `ports`.

Two schools: S1 (0750001A) and S2 (0750002B). Staff, all signing in through the agents' IdP by e-mail:
A1 (administrator by configuration, teacher in S1), P1 (data-protection officer by configuration),
D1 (head of S1: function DIR there), D2 (head of S2), T1 (a teacher, no console role), C1 (the collectivité's,
by configuration). Pupils 1001 (S1, class 6A, relatives R1) and 2001 (S2). The last import (staff) rejected one
record. The usage service counted November 2026 (closed): 12 pupils of S1 granted Atlas, signing in each week,
10 of them reaching it; 3 pupils of S2 granted it (too few: suppressed). An export from the old ENT is
incomplete (one item, one listing failed); the vault's access log has one read.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from unittest import mock
from zoneinfo import ZoneInfo

import pytest
import yaml

from app.bootstrap import ports
from relais.bus.consumer import EventConsumer
from relais.bus.contracts import subscriptions
from relais.config import Settings
from relais.db import make_engine, writer
from relais.ops.server import WsgiServer
from services.console.cli import RELEASED
from services.console.entrypoints.http import make_app
from services.console.handlers.desk import Desk
from services.console.rules.sealing import REFERENCE, seal
from services.console.settings import ConsoleSettings
from services.usage.handlers.close import close_period
from services.usage.handlers.ingest import UsageEvents
from services.vault.adapters.index import log_access
from services.vault.transfer.checkpoint import INCOMPLETE, ItemRow, OwnerRow, Scope, open_job
from tests import aaf_builder as aaf
from tests.provisioning.test_grants import World
from tests.saml_peers import Browser, SpWorld
from tests.usage import helpers as usage_events

S1, S2 = "0750001A", "0750002B"
MAIL = "urn:oid:0.9.2342.19200300.100.1.3"
SECRET = "console-test-secret-" + "x" * 20
ATTRIBUTES = RELEASED  # what `relais console check-config` says to register
CATALOGUE = {"resources": [
    {"id": "ark:/49591/atlas", "title": "Atlas", "publisher": "B", "licence": "per-user", "quota": 5},
    {"id": "ark:/49591/dico", "title": "Dictionnaire", "publisher": "C", "licence": "unlimited",
     "profiles": ["National_ELV"]},
]}
RULES = {"grace_days": 30,
         "rules": [{"id": "dico-pupils", "resource": "ark:/49591/dico", "profiles": ["National_ELV"]}]}


TENANT = "test"
PARIS = ZoneInfo("Europe/Paris")
ATLAS = "ark:/49591/atlas"


def count_usage(engine) -> None:
    """November 2026 as the usage service counts it from the SSO's and provisioning's events, then closed."""
    nov = datetime(2026, 11, 2, 8, 30, tzinfo=PARIS)
    s1, s2 = [f"U-S1-{i:02d}" for i in range(12)], [f"U-S2-{i}" for i in range(3)]
    events = [usage_events.grant(p, ATLAS, nov - timedelta(days=30), structure=S1) for p in s1]
    events += [usage_events.grant(p, ATLAS, nov - timedelta(days=30), structure=S2) for p in s2]
    for week in range(4):
        events += [usage_events.login(p, nov + timedelta(days=7 * week), structure=S1) for p in s1[:12 - week]]
    events += [usage_events.cas_visit(p, nov + timedelta(hours=1), "atlas-cas", structure=S1) for p in s1[:10]]
    handler = UsageEvents(TENANT, PARIS, {"atlas-cas": ATLAS})
    consumer = EventConsumer("usage", list(subscriptions()["usage"]), handler, engine, batch_handler=handler.many)
    outcomes = consumer.handle_many([(dataclasses.replace(e, tenant=TENANT).to_json(), 0) for e in events])
    assert {o.status for o in outcomes} == {"handled"}, outcomes
    close_period(engine, TENANT, "2026-11", datetime.now(UTC), PARIS, force=True)


def transfer_and_read(engine) -> None:
    """The contract end as the vault's checkpoints record it: an export from the old ENT that moved two of
    1001's documents and failed one (and 2001's listing), left incomplete; the DPO's read of one of them."""
    job = open_job(engine, tenant=TENANT, kind="export", connector="old-ent", scope=Scope(None, ("documents",)))
    with writer(engine).begin() as conn:
        job.record(conn, [ItemRow("1001", "documents", "a.odt", "done", "new", "0" * 64, 1_500_000),
                          ItemRow("1001", "documents", "b.odt", "done", "new", "1" * 64, 500_000),
                          ItemRow("1001", "documents", "c.odt", "failed", error="HTTP 500 from the ENT")],
                   [OwnerRow("2001", "documents", "failed", error="listing refused: HTTP 403")])
        log_access(conn, TENANT, "dpo:P1", "read", "1001", "documents", "a.odt", 1)
    job.finish(INCOMPLETE, "1 item and 1 listing failed")


def staff(j: str, school: str, functions: tuple[str, ...] = (), profile: str = "National_ENS") -> str:
    return aaf.add("PersEducNat", j, ENTPersonJointure=j, sn=f"Nom{j}", givenName="Claire",
                   ENTPersonStructRattach=school, ENTPersonProfils=profile, ENTPersonFonctions=list(functions),
                   mail=f"{j.lower()}@ac-test.fr")


class _Late:
    app = None

    def __call__(self, environ, start_response):
        return self.app(environ, start_response)


class ConsoleWorld:
    def __init__(self, engine, folder: Path, *, cookie_secure: bool = False):
        self.engine = engine
        self._late = _Late()
        self.server = WsgiServer(self._late, "127.0.0.1", 0, what="the console", where="tests")
        self.url = f"http://127.0.0.1:{self.server.port}"
        self.sso = SpWorld(engine, folder, directory=False, idp_settings={"kind": "agents", "label": "Personnels"},
                           services=[{"id": "console", "prefix": f"{self.url}/callback/", "attributes": ATTRIBUTES}])
        try:
            self.provisioning = World(engine, folder)
            self.provisioning.directory(aaf.school("S1", S1), aaf.school("S2", S2), kind="Complet",
                                        family="EtabEducNat")
            self.provisioning.directory(aaf.relative("R1", "Durand", "Paul"), kind="Complet", family="PersRelEleve")
            self.provisioning.directory(aaf.pupil("1001", structure="S1", klass="6A", relatives=["R1"]),
                                        aaf.pupil("2001", structure="S2", klass="3C"), kind="Complet", family="Eleve")
            self.provisioning.directory(staff("A1", "S1"), staff("P1", "S1"), staff("T1", "S1"),
                                        staff("D1", "S1", ("S1$DIR$DIRECTION",), "National_DIR"),
                                        staff("D2", "S2", ("S2$DIR$DIRECTION",), "National_DIR"), staff("C1", "S2"),
                                        aaf.add("PersEducNat", None, sn="SansJointure"),  # rejected: no jointure
                                        kind="Complet", family="PersEducNat")
            self.provisioning.load(CATALOGUE, RULES)
            count_usage(engine)
            transfer_and_read(engine)
            self.settings = ConsoleSettings.from_env({
                "RELAIS_CONSOLE_URL": self.url, "RELAIS_CONSOLE_CAS_URL": f"{self.sso.url}/cas",
                "RELAIS_CONSOLE_SECRET": SECRET, "RELAIS_CONSOLE_ADMINS": "A1", "RELAIS_CONSOLE_DPOS": "P1",
                "RELAIS_CONSOLE_COLLECTIVITE": "C1",
                "RELAIS_CONSOLE_COOKIE_SECURE": "true" if cookie_secure else "false", "RELAIS_CONSOLE_TIMEOUT_S": "5"})
            sso_config = folder / "sso.yaml"  # what the console reads of the SSO's: its registry, with more
            sso_config.write_text(yaml.safe_dump({
                "base_url": self.sso.url, "services": [
                    {"id": "app", "prefix": self.sso.app_url, "attributes": ["uid", "ENTPersonProfils"]},
                    {"id": "console", "prefix": f"{self.url}/callback/", "attributes": list(ATTRIBUTES)}],
                "idp": {"platforms": [{"id": "maths", "label": "Maths en ligne", "attributes": [
                    "GARPersonProfils", {"attribute": "sn", "name": "urn:oid:2.5.4.4"}]}]},
                "oidc": {"clients": [{"id": "moodle", "secret_env": "RELAIS_OIDC_MOODLE",
                                      "scopes": ["openid", "profile"], "claims": ["given_name", "ENTPersonProfils"]}]},
            }), encoding="utf-8")
            relais = Settings(data_dir=folder, database_url=engine.url.render_as_string(hide_password=False),
                              amqp_uri="amqp://guest:guest@127.0.0.1:5672/", tenant=TENANT)
            with mock.patch.dict(os.environ, {"RELAIS_SSO_CONFIG": str(sso_config)}):
                wired = ports("console", relais, engine)
            self.desk = Desk(engine, wired, self.settings.policy,
                             self.settings.cas_validate_url, self.settings.timeout_s)
            self._late.app = make_app(engine, self.desk, self.settings)
        except BaseException:
            self.stop()
            raise

    def ref(self, jointure: str) -> str:
        """The sealed reference a page would link a person by."""
        return seal(jointure, self.settings.secret, REFERENCE, int(time.time()))

    def sign_in(self, who: str, browser: Browser | None = None) -> Browser:
        """Sign `who` in at the IdP, then into the console through the SSO (every redirect and SAML form)."""
        browser = browser or Browser()
        self.sso.idp.user = (f"agent-{who}", {MAIL: [f"{who.lower()}@ac-test.fr"]})
        browser.response = browser.go(f"{self.url}/login")
        return browser

    def stop(self) -> None:
        self.server.stop()
        self.sso.stop()


@pytest.fixture(scope="module")
def world(tmp_path_factory, _sqlite_migrated):
    """One console world per test module (on a copy of the session's migrated SQLite database)."""
    folder = tmp_path_factory.mktemp("console")
    shutil.copyfile(_sqlite_migrated, folder / "relais.db")
    engine = make_engine(f"sqlite:///{folder / 'relais.db'}")
    w = ConsoleWorld(engine, folder)
    yield w
    w.stop()
    engine.dispose()

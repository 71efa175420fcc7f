"""A person in every service, for the subject request tests: imported by the directory, granted a licence by
provisioning (its consumer, over the broker), logged in by the SSO (the login counted by the usage
consumer), with a document in the vault's S3 store (moto) read once; a second pupil and their parent beside.
`services_running` runs each service's erasure consumer and a relay, as their processes would."""
from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from relais.commands import Context as CommandContext
from relais.commands import relay_now
from relais.config import Settings
from relais.db import writer
from relais.runtime.runner import event_consumer
from services.directory import subject as directory_subject
from services.directory.importing.options import ImportOptions
from services.directory.importing.run import DirectoryImporter
from services.provisioning import subject as provisioning_subject
from services.provisioning.handlers.configuration import load_catalogue, load_rules
from services.provisioning.handlers.work import Context as Work
from services.provisioning.process import consumer as provisioning_consumer
from services.sso import subject as sso_subject
from services.sso.sessions import open_session
from services.usage import subject as usage_subject
from services.usage.process import consumer as usage_consumer
from services.usage.settings import UsageSettings
from services.vault import subject as vault_subject
from services.vault.adapters.s3_store import S3Store
from services.vault.items import Vault
from tests import aaf_builder as aaf

TENANT = "test"
UAI = "0750001A"
PUPIL, OTHER, PARENT = "7731905", "7731906", "7731907"
NEEDLES = {  # what must vanish with the pupil (searched case-insensitively, as UTF-8 and as JSON escapes)
    "jointure": PUPIL, "last name": "Quarzazate", "first name": "Ysoldine", "INE": f"INE{PUPIL}",
    "e-mail": "ysoldine.quarzazate@ac-test.fr",
}
CONTROL = {"jointure": OTHER, "last name": "Ombrelune"}  # the other pupil's: must still be found
CATALOGUE = {"resources": [{"id": "ark:/49591/maths6", "title": "Maths 6e", "publisher": "A", "licence": "per-user",
                            "quota": 5}]}
RULES = {"grace_days": 30, "rules": [{"id": "maths-6a", "resource": "ark:/49591/maths6", "structures": [UAI],
                                      "classes": ["6A"]}]}
BUCKET_PREFIX = "subject-"


def files(folder: Path) -> list[Path]:
    pupil = aaf.pupil(PUPIL, structure="S1", klass="6A", relatives=[PARENT], sn=NEEDLES["last name"],
                      givenName=NEEDLES["first name"], mail=NEEDLES["e-mail"])
    other = aaf.pupil(OTHER, structure="S1", klass="6A", relatives=[PARENT], sn=CONTROL["last name"])
    return [aaf.write(folder, "P_Delta_20260901_EtabEducNat_0000.xml", aaf.school("S1", UAI)),
            aaf.write(folder, "P_Delta_20260901_PersRelEleve_0000.xml", aaf.relative(PARENT)),
            aaf.write(folder, "P_Delta_20260901_Eleve_0000.xml", pupil, other)]


def make_world(engine, amqp_uri, moto_s3, tmp_path, monkeypatch):
    """Settings in the environment (as `relais` reads them), and the person in every service."""
    url = engine.url.render_as_string(hide_password=False)
    env = {"RELAIS_DATA_DIR": str(tmp_path / "var"), "RELAIS_DATABASE_URL": url, "RELAIS_AMQP_URI": amqp_uri,
           "RELAIS_TENANT": TENANT, "RELAIS_VAULT_S3_ENDPOINT": f"http://{moto_s3.endpoint}",
           "RELAIS_VAULT_S3_ACCESS_KEY": "ak", "RELAIS_VAULT_S3_SECRET_KEY": "sk",
           "RELAIS_VAULT_S3_BUCKET_PREFIX": BUCKET_PREFIX + engine.dialect.name[:2] + "-"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("RELAIS_SSO_CONFIG", raising=False)
    settings = Settings.from_env()
    store = S3Store(moto_s3.endpoint, "ak", "sk", TENANT, secure=False,
                    bucket_prefix=env["RELAIS_VAULT_S3_BUCKET_PREFIX"])

    folder = tmp_path / "aaf"
    folder.mkdir()
    report = DirectoryImporter(engine, TENANT, ImportOptions(validate_events=True)).run(files(folder))
    assert report.ok, report.to_dict()
    ctx = CommandContext(settings)
    relay(ctx)
    event_consumer(provisioning_consumer(TENANT), engine).run(amqp_uri, idle_timeout=1.0)
    with writer(engine).begin() as conn:
        work = Work(TENANT)
        load_catalogue(conn, CATALOGUE, work)
        load_rules(conn, RULES, work)
        for person in (PUPIL, OTHER):
            open_session(conn, person_jointure=person, auth_source="educonnect", national_id=f"fr-{person}",
                         attributes={"sn": NEEDLES["last name"] if person == PUPIL else CONTROL["last name"],
                                     "mail": NEEDLES["e-mail"] if person == PUPIL else "x@example.org"},
                         now=datetime.now(UTC), tenant=TENANT)
    relay(ctx)
    for consumer in (provisioning_consumer(TENANT), usage_consumer(TENANT, UsageSettings.from_env())):
        event_consumer(consumer, engine).run(amqp_uri, idle_timeout=1.0)
    vault = Vault(engine, store, actor="test:teacher")
    for person, name in ((PUPIL, NEEDLES["last name"]), (OTHER, CONTROL["last name"])):
        content = f"Bulletin de {name}, {person}, INE{person}, {NEEDLES['e-mail'] if person == PUPIL else ''}"
        v = vault.put(person, "documents", f"bulletin-{name}.txt", content.encode(), {"title": f"Bulletin {name}"},
                      path=f"/Mes documents/{name}")
        vault.read(v)  # in the access log
    return {"engine": engine, "settings": settings, "ctx": ctx, "store": store, "moto": moto_s3, "amqp_uri": amqp_uri,
           "tmp": tmp_path}


def relay(ctx: CommandContext) -> None:
    _sent, pending, error = relay_now(ctx)
    assert error is None and pending == 0, error


ALL = ("directory", "provisioning", "sso", "usage", "vault")


@contextmanager
def services_running(world: dict, only: tuple[str, ...] = ALL) -> Iterator[None]:
    """The erasure consumers of `only` and a relay, in threads, until the block ends."""
    engine, store, uri = world["engine"], world["store"], world["amqp_uri"]
    made = {"directory": lambda: directory_subject.consumer(TENANT),
            "provisioning": lambda: provisioning_subject.consumer(TENANT),
            "sso": lambda: sso_subject.consumer(TENANT), "usage": lambda: usage_subject.consumer(TENANT),
            "vault": lambda: vault_subject.consumer(TENANT, store)}
    stop = threading.Event()
    failures: list[BaseException] = []

    def run(target) -> None:
        try:
            target()
        except BaseException as exc:  # noqa: BLE001 - said by the test
            failures.append(exc)

    def relaying() -> None:
        while not stop.wait(0.2):
            relay_now(world["ctx"])

    def consuming(service: str):
        consumer = event_consumer(made[service](), engine)
        return lambda: consumer.run(uri, stop=stop)

    threads = [threading.Thread(target=run, args=(consuming(s),)) for s in only]
    threads.append(threading.Thread(target=run, args=(relaying,)))
    for t in threads:
        t.start()
    try:
        yield
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert not failures, failures
    relay(world["ctx"])

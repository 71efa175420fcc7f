"""The RPC methods in contracts/asyncapi.yaml are those the services answer, with their own arguments, callers and
answers: the nameko service classes the runner would start, introspected; and real answers checked against the
documented schemas (contracts/rpc/), so the document cannot drift from the code."""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from typing import Any

import pytest
from jsonschema import Draft202012Validator, FormatChecker
from nameko.exceptions import serialize
from nameko.extensions import ENTRYPOINT_EXTENSIONS_ATTR
from nameko.rpc import Rpc
from referencing import Resource

from app.bootstrap import PROCESSES, ports
from relais.bus import contracts
from relais.config import Settings
from relais.runtime import Context
from relais.runtime.callers import Caller, RpcRefused
from services.directory.importing.options import ImportOptions
from services.directory.importing.run import DirectoryImporter
from services.vault.items import Vault
from services.vault.settings import VaultSettings
from tests import aaf_builder as aaf

RPC_EXCHANGE = "nameko-rpc"


def rpc_operations() -> dict[str, dict[str, Any]]:
    """`<service>.<method>` -> its AsyncAPI operation, for every operation on nameko's RPC exchange."""
    document = contracts.asyncapi_document()
    out = {}
    for operation in document["operations"].values():
        channel = document["channels"][operation["channel"]["$ref"].rsplit("/", 1)[-1]]
        if channel["bindings"]["amqp"].get("exchange", {}).get("name") == RPC_EXCHANGE:
            out[channel["address"]] = operation
    return out


def rpc_schemas() -> dict[str, dict[str, Any]]:
    return {p.name: json.loads(p.read_text(encoding="utf-8"))
            for p in sorted((contracts.contracts_dir() / "rpc").glob("*.json"))}


def validator(method: str, part: str) -> Draft202012Validator:
    """A validator for the `request` or `reply` of `<service>.<method>`, refs resolved among every contract schema."""
    registry = contracts._registry().with_resources(
        (schema["$id"], Resource.from_contents(schema)) for schema in rpc_schemas().values())
    schema_id = rpc_schemas()[f"{method}.json"]["$id"]
    return Draft202012Validator({"$ref": f"{schema_id}#/$defs/{part}"}, registry=registry,
                                format_checker=FormatChecker())


def problems(method: str, part: str, body: Any) -> list[str]:
    return [f"{e.json_path}: {e.message}" for e in validator(method, part).iter_errors(body)]


@pytest.fixture
def started(sqlite_engine, tmp_path, monkeypatch) -> dict[str, dict[str, Callable[..., Any]]]:
    """Service -> the RPC functions its process starts (as `relais serve` would, on SQLite and the local store)."""
    for name in ("RELAIS_VAULT_S3_ENDPOINT", "RELAIS_VAULT_S3_ACCESS_KEY", "RELAIS_VAULT_S3_SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings.from_env({"RELAIS_DATA_DIR": str(tmp_path / "var"), "RELAIS_TENANT": "test",
                                  "RELAIS_DATABASE_URL": str(sqlite_engine.url)})
    out = {}
    for service, process in PROCESSES.items():
        if process.rpc:
            parts = process.start(Context(settings, sqlite_engine, ports(service, settings, sqlite_engine)))
            out[service] = dict(parts.rpc)
            for close in parts.close:
                close()
    return out


def nameko_methods(started: dict[str, dict[str, Callable[..., Any]]]) -> dict[str, Callable[..., Any]]:
    """`<service>.<method>` -> function, for every RPC entrypoint of the nameko service classes the runner builds."""
    from relais.runtime.rpc import nameko_service  # nameko's runtime, as in the runner

    out = {}
    for service, functions in started.items():
        cls = nameko_service(service, functions, PROCESSES[service].rpc, f"relais-{service}")
        for name, member in vars(cls).items():
            if any(isinstance(e, Rpc) for e in getattr(member, ENTRYPOINT_EXTENSIONS_ATTR, ())):
                out[f"{cls.name}.{name}"] = functions[name]
    return out


def test_every_method_the_services_answer_is_documented_and_nothing_more(started):
    exposed, documented = set(nameko_methods(started)), set(rpc_operations())
    assert len(exposed) >= 12
    assert sorted(exposed - documented) == [], "RPC methods missing from contracts/asyncapi.yaml"
    assert sorted(documented - exposed) == [], "documented in contracts/asyncapi.yaml, but no service answers them"
    assert {f"{name[:-5]}" for name in rpc_schemas() if name != "common.json"} == exposed


def test_the_documented_arguments_are_the_methods_own(started):
    for method, fn in nameko_methods(started).items():
        service, name = method.split(".")
        params = [p for p in inspect.signature(fn).parameters.values()
                  if not (p.name == "caller" and PROCESSES[service].rpc[name].caller)]
        arguments = rpc_schemas()[f"{method}.json"]["$defs"]["arguments"]
        assert list(arguments["properties"]) == [p.name for p in params], method
        assert arguments["required"] == [p.name for p in params if p.default is inspect.Parameter.empty], method


def test_the_documented_callers_are_those_the_service_lets_call():
    for method, operation in rpc_operations().items():
        service, name = method.split(".")
        callers = list(PROCESSES[service].rpc[name].callers)
        assert operation["x-relais-callers"] == callers, method
        assert rpc_schemas()[f"{method}.json"]["description"].endswith(f"Callers: {', '.join(callers)}."), method


def test_every_rpc_schema_is_valid_and_each_message_names_its_own():
    for schema in rpc_schemas().values():
        Draft202012Validator.check_schema(schema)
    document = contracts.asyncapi_document()
    for method, operation in rpc_operations().items():
        request = operation["messages"][0]["$ref"].rsplit("/", 1)[-1]
        reply = operation["reply"]["messages"][0]["$ref"].rsplit("/", 1)[-1]
        assert operation["reply"]["channel"]["$ref"] == "#/channels/rpc_reply"
        for key, part in ((request, "request"), (reply, "reply")):
            message = document["components"]["messages"][key]
            assert message["payload"]["schema"]["$ref"] == f"./rpc/{method}.json#/$defs/{part}", key


def test_the_request_schemas_hold_nameko_s_bodies():
    def body(*args: Any, **kwargs: Any) -> dict[str, Any]:
        return {"args": list(args), "kwargs": kwargs}

    assert problems("directory.members", "request", body("S1")) == []
    assert problems("directory.members", "request", body("S1", None, "G1")) == []
    assert problems("directory.members", "request", body("S1", group_code="G1")) == []
    assert problems("directory.members", "request", body(structure="S1", class_code=None)) == []
    assert problems("directory.members", "request", body("S1", None, "G1", "more")) != []
    assert problems("directory.members", "request", body("S1", grade="3")) != []
    assert problems("directory.get_person", "request", body(7)) != []
    assert problems("vault.status", "request", body()) == []
    assert problems("vault.status", "request", body("x")) != []
    assert problems("vault.restore", "request", body("P1", "documents", "a.txt", None, 2)) == []
    assert problems("vault.restore", "request", body("P1", "photos", "a.txt")) != []


def test_the_directory_answers_as_documented(started, sqlite_engine, tmp_path):
    files = [aaf.write(tmp_path, "P_Complet_20260901_EtabEducNat_0000.xml", aaf.school("S1", "0123456A")),
             aaf.write(tmp_path, "P_Complet_20260901_Eleve_0000.xml", aaf.pupil("1", relatives=["R1"])),
             aaf.write(tmp_path, "P_Complet_20260901_PersRelEleve_0000.xml", aaf.relative("R1", "Dupré", "Hélène")),
             aaf.write(tmp_path, "P_Complet_20260901_PersEducNat_0000.xml",
                       aaf.add("PersEducNat", "T1", ENTPersonJointure="T1", sn="Durand", givenName="Zoé",
                               mail="zoe.durand@ac-test.fr", ENTPersonStructRattach="S1",
                               ENTPersonFonctions="S1$DOC$DOCUMENTATION$L0100$DOC"))]
    report = DirectoryImporter(sqlite_engine, "test", ImportOptions()).run(files)
    assert report.ok, report.to_dict()
    calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = [
        ("get_person", ("1",), {}), ("get_person", ("nobody",), {}),
        ("find_pupils", ("R1", "0123456a"), {}), ("find_parents", ("R1", "0123456A", "DUPRE", "helene"), {}),
        ("find_by_email", ("Zoe.Durand@ac-test.fr",), {}), ("children", ("R1",), {}),
        ("get_structure", ("0123456A",), {}), ("get_structure", ("nowhere",), {}), ("find_by_ine", ("ine1",), {}),
        ("members", ("S1",), {}), ("members", ("S1",), {"class_code": "3A"}), ("legal_guardians", ("1",), {}),
    ]
    answered = set()
    for name, args, kwargs in calls:
        method = f"directory.{name}"
        assert problems(method, "request", {"args": list(args), "kwargs": kwargs}) == [], method
        result = started["directory"][name](*args, **kwargs)
        assert problems(method, "reply", {"result": result, "error": None}) == [], (method, args)
        answered.add(method)
    assert answered == {m for m in rpc_operations() if m.startswith("directory.")}
    person = started["directory"]["get_person"]("1")
    assert person["attributes"]["ENTEleveINE"] == ["INE1"]
    assert problems("directory.get_person", "reply", {"result": {**person, "is_admin": True}, "error": None}) != []
    assert problems("directory.find_by_email", "reply",
                    {"result": [{**person, "birth_date": "01/02/2012"}], "error": None}) != []


def test_the_vault_answers_as_documented(started, sqlite_engine, tmp_path):
    settings = Settings.from_env({"RELAIS_DATA_DIR": str(tmp_path / "var"), "RELAIS_TENANT": "test",
                                  "RELAIS_DATABASE_URL": str(sqlite_engine.url)})
    vault_settings = VaultSettings.from_env(env={}, settings=settings)
    store = vault_settings.store_on_first_use("test")
    store.open()
    vault = Vault(sqlite_engine, store, actor="test", retention=vault_settings.default_retention)
    vault.put("P1", "documents", "notes/a.txt", b"hello", {"title": "a"}, path="notes/a.txt")
    vault.delete("P1", "documents", "notes/a.txt")
    operator = Caller(user="relais-operator", role="operator")
    rpc = started["vault"]
    answers = {
        "vault.status": rpc["status"](),
        "vault.versions": rpc["versions"]("P1", "documents", "notes/a.txt", caller=operator),
        "vault.restore": rpc["restore"]("P1", "documents", "notes/a.txt", "operator:jdupont", None, caller=operator),
    }
    assert [v["deleted"] for v in answers["vault.versions"]] == [False, True]
    assert answers["vault.status"]["verticals"]["documents"]["versions"] == 2
    for method, result in answers.items():
        assert problems(method, "reply", {"result": result, "error": None}) == [], method
    assert problems("vault.versions", "reply", {"result": rpc["versions"]("P1", "documents", "nothing.txt",
                                                                           caller=operator), "error": None}) == []
    with pytest.raises(LookupError) as nothing:
        rpc["restore"]("P1", "documents", "nothing.txt", caller=operator)
    assert problems("vault.restore", "reply", {"result": None, "error": serialize(nothing.value)}) == []
    assert problems("vault.status", "reply", {"result": {**answers["vault.status"], "extra": 1}, "error": None}) != []


def test_a_refusal_is_a_documented_error_reply():
    refused = serialize(RpcRefused("directory.find_by_ine: refused to sso (broker user 'relais-sso'); "
                                   "allowed callers: operator"))
    assert refused["exc_type"] == "RpcRefused"
    assert problems("directory.find_by_ine", "reply", {"result": None, "error": refused}) == []
    assert problems("directory.find_by_ine", "reply", {"result": [], "error": refused}) != []
    assert problems("directory.find_by_ine", "reply", {"result": []}) != []

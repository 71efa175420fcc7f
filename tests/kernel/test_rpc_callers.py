"""Who may call an RPC method, and each broker user's permissions, as the kernel derives them (no broker here:
tests/e2e/test_broker_users.py holds RabbitMQ and the running services to the same)."""

from __future__ import annotations

import re

import pytest

from app.bootstrap import PROCESSES
from relais.bus.contracts import subscriptions
from relais.runtime import OPERATOR, RpcMethod
from relais.runtime.broker_users import UUID, password_hash, passwords, permissions, roles
from relais.runtime.callers import RpcRefused, authorise, role_of

SSO_AND_OPERATOR = RpcMethod(callers=("sso", OPERATOR))


def test_a_caller_is_the_role_its_broker_user_names_beside_the_servers_own():
    assert role_of("relais-sso", "relais-directory", "directory") == "sso"
    assert role_of("relais-operator", "relais-directory", "directory") == OPERATOR
    assert role_of("t1-sso", "t1-directory", "directory") == "sso"  # the prefix is the server's
    assert role_of("relais-sso", "t1-directory", "directory") is None  # another deployment's user
    assert role_of("guest", "relais-directory", "directory") is None


def test_a_server_sharing_its_user_takes_only_that_user_for_the_operator():
    assert role_of("guest", "guest", "directory") == OPERATOR
    assert role_of("relais-sso", "guest", "directory") is None


def test_the_declared_callers_pass_and_the_refusal_names_method_caller_and_who_may():
    assert authorise("directory", "get_person", SSO_AND_OPERATOR, "relais-sso", "relais-directory").role == "sso"
    with pytest.raises(RpcRefused) as refused:
        authorise("directory", "get_person", SSO_AND_OPERATOR, "relais-provisioning", "relais-directory")
    assert str(refused.value) == ("directory.get_person: refused to provisioning (broker user 'relais-provisioning'); "
                                  "allowed callers: sso, operator")


@pytest.mark.parametrize("user_id", [None, "", 42])
def test_a_request_without_user_id_is_refused(user_id):
    with pytest.raises(RpcRefused, match=r"directory\.get_person: refused a request without user_id"):
        authorise("directory", "get_person", SSO_AND_OPERATOR, user_id, "relais-directory")


def test_an_rpc_method_must_say_who_may_call_it():
    with pytest.raises(ValueError, match="non-empty tuple"):
        RpcMethod(callers=())
    with pytest.raises(ValueError, match="non-empty tuple"):
        RpcMethod(callers="operator")  # a string, not a tuple: the mistake under test


def _granted(role_name: str, user: str):
    contracts = subscriptions()
    role = {r.name: r for r in roles(PROCESSES, contracts)}[role_name]
    return permissions(role, user, contracts)


def _matches(pattern: str, name: str) -> bool:
    return re.search(pattern, name) is not None  # RabbitMQ's test: the pattern found in the name


def test_a_consumer_reads_its_own_queues_only():
    granted = _granted("provisioning", "relais-provisioning")
    for own in ("relais.q.provisioning", "relais.q.provisioning.retry.2", "relais.q.provisioning.dlq"):
        assert _matches(granted.read, own) and _matches(granted.configure, own)
    for other in ("relais.q.vault", "relais.q.provisioning2", "rpc-directory", "relais.unrouted",
                  "rpc.reply-relais-operator-" + "0" * 8 + "-0000-0000-0000-" + "0" * 12):
        assert not _matches(granted.read, other), other
    write, read = granted.topics["relais.events"]
    assert _matches(read, "directory.person.created") and not _matches(read, "#")
    assert not _matches(read, "vault.person.erased")


def test_a_consumer_gets_its_own_queues_and_its_event_types_only():
    """The usage service: no RPC; its relay publishes only its erasure confirmations (`Process.sends`), the one type
    its user may publish. It declares, reads and
    dead-letters relais.q.usage and relais.q.usage-subject (retries and dead letters through the default exchange),
    binds them to the types the contracts give them, and nothing else."""
    contracts = subscriptions()
    (role,) = [r for r in roles(PROCESSES, contracts) if r.name == "usage"]
    assert (role.publishes, role.consumers, role.answers, dict(role.calls), role.tags) == (
        True, ("usage", "usage-subject"), False, {}, ())
    granted = permissions(role, "relais-usage", contracts)
    own = ("relais.q.usage", "relais.q.usage.retry.1", "relais.q.usage.retry.12", "relais.q.usage.dlq",
           "relais.q.usage-subject", "relais.q.usage-subject.dlq")
    for queue in own:
        assert _matches(granted.configure, queue) and _matches(granted.read, queue) and _matches(granted.write, queue)
    for other in ("relais.q.provisioning", "relais.q.usage2", "relais.q.usage.retry.x", "relais.q.usage.dlq2",
                  "relais.q.vault-subject", "relais.unrouted", "nameko-rpc", "rpc-usage", "rpc-directory"):
        assert not _matches(granted.configure, other), other
        assert not _matches(granted.write, other), other
    assert {n for n in ("relais.events", "amq.default", "nameko-rpc", "relais.unrouted")
            if _matches(granted.read, n)} == {"relais.events"}  # to bind its queues, from which it reads nothing
    assert {n for n in ("relais.events", "amq.default", "nameko-rpc") if _matches(granted.write, n)} == {
        "relais.events", "amq.default"}
    events_write, events_read = granted.topics["relais.events"]
    assert granted.topics["nameko-rpc"] == ("^$", "^$")
    assert _matches(events_write, "subject.erasure.confirmed")
    for other in ("sso.login.succeeded", "subject.erasure.requested", "#", "subject.erasure.confirmedx"):
        assert not _matches(events_write, other), other
    receives = contracts["usage"] + contracts["usage-subject"]
    assert {"sso.login.succeeded", "provisioning.grant.created", "subject.erasure.requested"} <= set(receives)
    for event_type in receives:
        assert _matches(events_read, event_type), event_type
    for other in ("#", "sso.*", "directory.person.created", "vault.person.erased", "sso.login.succeeded.x",
                  "subject.erasure.confirmed"):
        assert not _matches(events_read, other), other


def test_an_rpc_caller_may_publish_only_the_methods_it_is_allowed_and_bind_only_reply_keys():
    write, read = _granted("sso", "relais-sso").topics["nameko-rpc"]
    assert _matches(write, "directory.get_person")
    assert not _matches(write, "directory.find_by_ine") and not _matches(write, "vault.versions")
    assert _matches(read, "3f2b8c1e-1d2a-4c3b-9e8f-0a1b2c3d4e5f")
    for wide in ("#", "*.*", "directory.*", "directory.get_person"):
        assert not _matches(read, wide), wide
    granted = _granted("sso", "relais-sso")
    assert _matches(granted.read, "rpc.reply-relais-sso-3f2b8c1e-1d2a-4c3b-9e8f-0a1b2c3d4e5f")
    assert not _matches(granted.read, "rpc.reply-relais-operator-3f2b8c1e-1d2a-4c3b-9e8f-0a1b2c3d4e5f")
    assert re.fullmatch(UUID, "3f2b8c1e-1d2a-4c3b-9e8f-0a1b2c3d4e5f")


def test_no_service_may_declare_or_read_what_all_share():
    for role in ("directory", "provisioning", "sso", "usage", "vault", OPERATOR):
        granted = _granted(role, f"relais-{role}")
        for shared in ("relais.events", "relais.unrouted"):
            assert not _matches(granted.configure, shared), (role, shared)
        assert not _matches(granted.read, "relais.unrouted"), role


def test_the_password_hash_is_rabbitmqs_salted_sha256():
    # RabbitMQ's own worked example (its "Credentials and Passwords" guide): test12 with the salt 908DC60A
    assert password_hash("test12", salt=bytes.fromhex("908DC60A")) == "kI3GCqW5JLMJa4iX1lo7X4D6XbYqlLgxIs30+P6tENUV2POR"


def test_passwords_come_from_the_environment_else_the_file_which_keeps_new_ones(tmp_path):
    path = tmp_path / "broker-passwords.env"
    first = passwords(["directory", "sso"], path, env={"RELAIS_BROKER_PASSWORD_SSO": "from-env"})
    assert first["sso"] == "from-env" and len(first["directory"]) == 48
    assert path.stat().st_mode & 0o777 == 0o600
    assert passwords(["directory", "sso"], path, env={})["directory"] == first["directory"]
    rotated = passwords(["directory", "sso"], path, env={}, rotate=["directory"])
    assert rotated["directory"] != first["directory"]
    assert passwords(["directory"], path, env={})["directory"] == rotated["directory"]


def test_a_process_that_does_not_use_the_broker_gets_no_user_and_each_other_one_does():
    made = {r.name for r in roles(PROCESSES, subscriptions())}
    expected = {name for name, p in PROCESSES.items() if p.relay or p.rpc or name in subscriptions()}
    assert made == expected | {OPERATOR}
    assert {"directory", "provisioning", "sso", "usage", "vault"} <= made


def test_the_operator_may_publish_erasure_requests_only_and_read_their_confirmations():
    """`relais subject erase` runs as the operator: it publishes subject.erasure.requested and consumes
    relais.q.subject (the confirmations); no other event, no service's queue."""
    contracts = subscriptions()
    (role,) = [r for r in roles(PROCESSES, contracts) if r.name == OPERATOR]
    assert (role.publishes, role.sends, role.consumers) == (True, ("subject.erasure.requested",), ("subject",))
    granted = permissions(role, "relais-operator", contracts)
    events_write, events_read = granted.topics["relais.events"]
    assert _matches(events_write, "subject.erasure.requested")
    assert not any(_matches(events_write, t) for t in ("subject.erasure.confirmed", "directory.person.deleted", "#"))
    assert _matches(events_read, "subject.erasure.confirmed") and not _matches(events_read, "#")
    for queue in ("relais.q.subject", "relais.q.subject.dlq"):
        assert _matches(granted.read, queue) and _matches(granted.configure, queue)
    assert not any(_matches(granted.read, q) for q in ("relais.q.vault-subject", "relais.q.usage", "relais.unrouted"))

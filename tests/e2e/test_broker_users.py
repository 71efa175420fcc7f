"""Each service on its own RabbitMQ user, as `relais deploy broker-users --apply` makes them, on the real broker.

The users are throw-away (a prefix of their own, on a throw-away vhost), made through the management
API as the administrator would, and deleted afterwards. The services run as `relais serve` processes
with their own user; `relais rpc` calls as the user of its RELAIS_AMQP_URI.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.parse
import uuid
from pathlib import Path

import amqp
import pytest
from sqlalchemy import select

from relais.bus.publisher import ConfirmedPublisher, OutgoingMessage
from relais.bus.topology import declare_events_exchange
from relais.config import parse_amqp_uri
from relais.db import make_engine
from relais.runtime.broker_users import definitions, import_definitions, roles
from services.vault.adapters.tables import vault_access_log
from tests.conftest import RABBIT_API
from tests.ops_helpers import RELAIS, Service, rabbit_api


class BrokerUsers:
    """The users of one test: `uri(role)` is the RELAIS_AMQP_URI a service (or the operator) runs with."""

    def __init__(self, admin_uri: str, prefix: str, folder: Path) -> None:
        self.admin_uri, self.prefix, self.folder = admin_uri, prefix, folder
        self.vhost = parse_amqp_uri(admin_uri).virtual_host

    def user(self, role: str) -> str:
        return f"{self.prefix}{role}"

    def env(self, role: str) -> dict[str, str]:
        """What `--env-dir` wrote for `role` (a unit's EnvironmentFile=)."""
        lines = (self.folder / f"{role}.env").read_text().splitlines()
        return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))

    def uri(self, role: str) -> str:
        return self.env(role)["RELAIS_AMQP_URI"]

    def connect(self, role: str) -> amqp.Connection:
        conn = amqp.Connection(**parse_amqp_uri(self.uri(role)).connection_kwargs())
        conn.connect()
        return conn

    def delete(self) -> None:
        """Every user of this test: the broker's users named with its prefix."""
        for user in rabbit_api("GET", "/api/users"):
            if user["name"].startswith(self.prefix):
                rabbit_api("DELETE", f"/api/users/{urllib.parse.quote(user['name'], safe='')}")


def _admin_env(amqp_uri: str) -> dict[str, str]:
    return {**os.environ, "RELAIS_AMQP_URI": amqp_uri, "RELAIS_RABBITMQ_API": RABBIT_API}


@pytest.fixture
def broker_users(amqp_uri, tmp_path):
    """`relais deploy broker-users --apply` on a throw-away vhost, with a prefix of the test's own."""
    users = BrokerUsers(amqp_uri, f"relais-t{uuid.uuid4().hex[:8]}-", tmp_path / "broker")
    try:
        made = subprocess.run([RELAIS, "deploy", "broker-users", "--apply", "--prefix", users.prefix,
                               "--passwords", str(tmp_path / "broker-passwords.env"), "--env-dir", str(users.folder)],
                              env=_admin_env(amqp_uri), capture_output=True, text=True, timeout=120)
        assert made.returncode == 0, made.stderr
        yield users
    finally:
        users.delete()


def _serve(service: str, users: BrokerUsers, tmp_path: Path, **env: str) -> Service:
    settings = {"RELAIS_DATA_DIR": str(tmp_path / "var"), "RELAIS_TENANT": "test",
                "RELAIS_AMQP_URI": users.uri(service), **env}
    svc = Service(service, settings, tmp_path / f"{service}.log")
    svc.wait_alive()
    svc.wait_ready(60)
    if service in ("directory", "vault"):  # its nameko container consumes `rpc-<service>` (it starts after)
        admin = amqp.Connection(**parse_amqp_uri(users.admin_uri).connection_kwargs())
        admin.connect()
        try:
            deadline = time.monotonic() + 30
            while _consumers(admin, f"rpc-{service}") < 1:
                assert time.monotonic() < deadline, svc.logs()
                time.sleep(0.2)
        finally:
            admin.close()
    return svc


def _consumers(conn: amqp.Connection, queue: str) -> int:
    try:
        return conn.channel().queue_declare(queue, passive=True).consumer_count
    except amqp.exceptions.NotFound:
        return 0


def _rpc(users: BrokerUsers, role: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "RELAIS_AMQP_URI": users.uri(role) if role != "guest" else users.admin_uri,
           "RELAIS_DATA_DIR": str(tmp_path / "var"), "RELAIS_TENANT": "test"}
    return subprocess.run([RELAIS, "rpc", *args], env=env, capture_output=True, text=True, timeout=90)


def _refused(action, code: int) -> str:
    """What RabbitMQ said refusing `action` (a channel error with `code`: 403 access refused, 406 precondition)."""
    with pytest.raises(amqp.exceptions.AMQPError) as refused:
        action()
    assert refused.value.reply_code == code, refused.value
    return refused.value.reply_text


def test_each_service_works_on_its_own_user(broker_users, tmp_path):
    """The permissions are enough: the directory publishes, provisioning consumes and dead-letters, the
    operator reads the management API; and no service may declare what they share."""
    provisioning = _serve("provisioning", broker_users, tmp_path)
    try:
        # A directory event: published as the directory's user (publishing its relay does), consumed by
        # provisioning's, which sends this one (not JSON) to its dead-letter queue through the default exchange.
        with ConfirmedPublisher(broker_users.uri("directory")) as publisher:
            assert publisher.publish([OutgoingMessage("directory.person.updated", b"{not json", "poison",
                                                      "directory.person.updated")]) == 1
        deadline = time.monotonic() + 30
        while provisioning.metric("relais_messages_total", consumer="provisioning", outcome="dead") < 1:
            assert time.monotonic() < deadline, provisioning.logs()
            time.sleep(0.2)
        admin = amqp.Connection(**parse_amqp_uri(broker_users.admin_uri).connection_kwargs())
        admin.connect()
        try:
            assert admin.channel().queue_declare("relais.q.provisioning.dlq", passive=True).message_count == 1
        finally:
            admin.close()
        assert "ACCESS_REFUSED" not in provisioning.logs()
    finally:
        assert provisioning.stop() == 0
    env = {**os.environ, **broker_users.env("operator"), "RELAIS_DATA_DIR": str(tmp_path / "var")}
    status = subprocess.run([RELAIS, "status", "--json"], env=env, capture_output=True, text=True, timeout=60)
    report = json.loads(status.stdout)
    assert report["broker"]["source"].startswith("management API at"), report["broker"]  # the monitoring tag
    assert report["consumers"]["provisioning"]["exists"] is True
    conn = broker_users.connect("sso")
    try:
        text = _refused(lambda: declare_events_exchange(conn.channel()), 403)
        assert f"refused for user '{broker_users.user('sso')}'" in text
    finally:
        conn.collect()


def test_the_usage_service_consumes_and_dead_letters_on_its_own_user_and_may_do_nothing_else(broker_users, tmp_path):
    """relais-usage: enough to consume relais.q.usage and send a poison event to its dead-letter queue (through
    the default exchange); not enough to publish another event than its erasure confirmations, read another
    queue or bind its own to other events."""
    usage = _serve("usage", broker_users, tmp_path)
    try:
        with ConfirmedPublisher(broker_users.uri("sso")) as publisher:  # as the SSO's relay publishes it
            assert publisher.publish([OutgoingMessage("sso.login.succeeded", b"{not json", "poison",
                                                      "sso.login.succeeded")]) == 1
        deadline = time.monotonic() + 30
        while usage.metric("relais_messages_total", consumer="usage", outcome="dead") < 1:
            assert time.monotonic() < deadline, usage.logs()
            time.sleep(0.2)
        admin = amqp.Connection(**parse_amqp_uri(broker_users.admin_uri).connection_kwargs())
        admin.connect()
        try:
            assert admin.channel().queue_declare("relais.q.usage.dlq", passive=True).message_count == 1
            assert admin.channel().queue_declare("relais.q.usage", passive=True).consumer_count >= 1
        finally:
            admin.close()
        assert "ACCESS_REFUSED" not in usage.logs()
    finally:
        assert usage.stop() == 0
    conn = broker_users.connect("usage")
    try:
        assert conn.channel().basic_get("relais.q.usage") is None  # its own queue: allowed (and empty)
        channel = conn.channel()
        channel.confirm_select()
        text = _refused(lambda: channel.basic_publish_confirm(amqp.Message(b"{}"), "relais.events",
                                                              "sso.login.succeeded"), 403)
        assert "access to topic 'sso.login.succeeded' in exchange 'relais.events'" in text
        text = _refused(lambda: conn.channel().basic_get("relais.q.provisioning"), 403)
        assert "access to queue 'relais.q.provisioning'" in text
        bind = conn.channel().queue_bind
        text = _refused(lambda: bind("relais.q.usage", "relais.events", "directory.person.created"), 403)
        assert "access to topic 'directory.person.created' in exchange 'relais.events'" in text
    finally:
        conn.collect()


def test_an_rpc_caller_without_the_right_is_refused_naming_the_method_and_the_caller(broker_users, tmp_path):
    directory = _serve("directory", broker_users, tmp_path)
    try:
        # The permitted callers get their answer: the SSO a method of its port, the operator any method.
        allowed = _rpc(broker_users, "sso", tmp_path, "directory", "get_person", "2605692")
        assert (allowed.returncode, allowed.stdout.strip()) == (0, "null"), allowed.stderr
        allowed = _rpc(broker_users, "operator", tmp_path, "directory", "find_by_ine", "1234567890A")
        assert (allowed.returncode, allowed.stdout.strip()) == (0, "[]"), allowed.stderr

        # The broker refuses first: the SSO's user may not even publish a method outside its port.
        refused = _rpc(broker_users, "sso", tmp_path, "directory", "find_by_ine", "1234567890A")
        assert refused.returncode == 1 and refused.stdout == ""
        assert (f"RabbitMQ refused the call: ACCESS_REFUSED - access to topic 'directory.find_by_ine' in exchange "
                f"'nameko-rpc' in vhost '{broker_users.vhost}' refused for user '{broker_users.user('sso')}'"
                ) in refused.stderr

        # Had an administrator widened the provisioning's user by hand, the directory refuses it itself.
        user = urllib.parse.quote(broker_users.user("provisioning"), safe="")
        vhost = urllib.parse.quote(broker_users.vhost, safe="")
        _put(f"/api/permissions/{vhost}/{user}", {"configure": ".*", "write": ".*", "read": ".*"})
        rabbit_api("DELETE", f"/api/topic-permissions/{vhost}/{user}")
        refused = _rpc(broker_users, "provisioning", tmp_path, "directory", "get_person", "2605692")
        assert refused.returncode == 1 and refused.stdout == ""
        assert (f"relais rpc directory get_person: RpcRefused: directory.get_person: refused to provisioning "
                f"(broker user '{broker_users.user('provisioning')}'); allowed callers: sso, operator"
                ) in refused.stderr

        # A broker user standing for no Relais role (the administrator's, here) is refused too.
        refused = _rpc(broker_users, "guest", tmp_path, "directory", "get_person", "2605692")
        assert refused.returncode == 1
        assert "directory.get_person: refused to broker user 'guest', which stands for no Relais role" \
            in refused.stderr
        assert "directory.get_person: refused to provisioning" in directory.logs()  # and the service says so
    finally:
        assert directory.stop() == 0


def test_a_forged_actor_is_refused_and_the_access_log_records_the_checked_caller(broker_users, tmp_path):
    vault = _serve("vault", broker_users, tmp_path)
    try:
        forged = _rpc(broker_users, "operator", tmp_path, "vault", "versions", "P3", "documents", "d3.pdf", "sso")
        assert forged.returncode == 1 and forged.stdout == ""
        assert ("RpcRefused: vault: actor 'sso' is not the caller, 'operator': pass no actor, 'operator', "
                "or 'operator:<who>' to name who acts through it") in forged.stderr
        for actor in ((), ("operator:helpdesk",)):
            listed = _rpc(broker_users, "operator", tmp_path, "vault", "versions", "P3", "documents", "d3.pdf", *actor)
            assert (listed.returncode, listed.stdout.strip()) == (0, "[]"), listed.stderr
        engine = make_engine(f"sqlite:///{tmp_path / 'var' / 'relais.db'}")
        with engine.connect() as conn:
            actors = conn.execute(select(vault_access_log.c.actor).order_by(vault_access_log.c.id)).scalars().all()
        engine.dispose()
        assert actors == ["rpc:operator", "rpc:operator:helpdesk"]  # nothing recorded for the refused call
        refused = _rpc(broker_users, "sso", tmp_path, "vault", "versions", "P3", "documents", "d3.pdf")
        assert f"'vault.versions' in exchange 'nameko-rpc' in vhost '{broker_users.vhost}' refused for user " \
               f"'{broker_users.user('sso')}'" in refused.stderr
    finally:
        assert vault.stop() == 0


def test_a_forged_user_id_is_refused_by_the_broker_and_a_request_without_one_by_the_service(broker_users, tmp_path):
    directory = _serve("directory", broker_users, tmp_path)
    conn = broker_users.connect("sso")
    try:
        channel = conn.channel()
        channel.confirm_select()
        forged = amqp.Message(b'{"args": ["2605692"], "kwargs": {}}', content_type="application/json",
                              user_id=broker_users.user("operator"), reply_to=str(uuid.uuid4()))
        text = _refused(lambda: channel.basic_publish_confirm(forged, "nameko-rpc", "directory.get_person"), 406)
        assert text == (f"PRECONDITION_FAILED - user_id property set to '{broker_users.user('operator')}' "
                        f"but authenticated user was '{broker_users.user('sso')}'")

        # Without user_id: the request reaches the directory, which answers with a refusal.
        key = str(uuid.uuid4())
        replies = f"rpc.reply-{broker_users.user('sso')}-{key}"
        channel = conn.channel()
        channel.queue_declare(replies, auto_delete=True)
        channel.queue_bind(replies, "nameko-rpc", key)
        channel.basic_publish(amqp.Message(b'{"args": ["2605692"], "kwargs": {}}', content_type="application/json",
                                           reply_to=key, correlation_id="c1"), "nameko-rpc", "directory.get_person")
        deadline = time.monotonic() + 30
        while (reply := channel.basic_get(replies, no_ack=True)) is None:
            assert time.monotonic() < deadline, directory.logs()
            time.sleep(0.1)
        error = json.loads(reply.body)["error"]
        assert error["exc_type"] == "RpcRefused"
        assert error["value"].startswith("directory.get_person: refused a request without user_id")
    finally:
        conn.collect()
        assert directory.stop() == 0


def test_a_services_user_cannot_read_or_tap_what_others_receive(broker_users):
    """Permissions: no service reads another's queues, nor binds a queue of its own to copy their messages."""
    conns = {role: broker_users.connect(role) for role in ("provisioning", "vault", "sso")}
    try:
        def get(role: str, queue: str):
            return lambda: conns[role].channel().basic_get(queue)

        assert conns["provisioning"].channel().basic_get("relais.q.provisioning") is None  # its own: allowed
        for role, queue in (("provisioning", "relais.q.vault"), ("vault", "relais.q.provisioning"),
                            ("vault", "relais.q.provisioning.dlq"), ("sso", "relais.unrouted"),
                            ("sso", "rpc-directory"), ("provisioning", "rpc-vault")):
            text = _refused(get(role, queue), 403)
            assert f"access to queue '{queue}' in vhost '{broker_users.vhost}' refused for user " \
                   f"'{broker_users.user(role)}'" in text

        # Its own reply queue, bound to everything passing through nameko-rpc or relais.events: refused.
        key = str(uuid.uuid4())
        tap = f"rpc.reply-{broker_users.user('sso')}-{key}"
        conns["sso"].channel().queue_declare(tap, auto_delete=True)
        for exchange, wide in (("nameko-rpc", "#"), ("nameko-rpc", "directory.*"), ("relais.events", "#")):
            text = _refused(lambda e=exchange, w=wide: conns["sso"].channel().queue_bind(tap, e, w), 403)
            assert "refused for user" in text
        # Nor may a consumer bind its queue to events the contracts do not give it.
        text = _refused(lambda: conns["vault"].channel().queue_bind("relais.q.vault", "relais.events",
                                                                   "directory.person.created"), 403)
        assert "access to topic 'directory.person.created' in exchange 'relais.events'" in text
    finally:
        for conn in conns.values():
            conn.collect()


def test_a_publisher_that_may_not_declare_a_consumers_queue_says_so_and_publishes(amqp_uri, tmp_path, caplog):
    """Users made but the shared queues not declared (`apply` half done): the SSO's relay still publishes."""
    from app.bootstrap import PROCESSES
    from relais.bus.contracts import subscriptions

    prefix = f"relais-t{uuid.uuid4().hex[:8]}-"
    users = BrokerUsers(amqp_uri, prefix, tmp_path)
    contracts = subscriptions()
    made = {f"{prefix}{r.name}": (r, "pw-" + r.name) for r in roles(PROCESSES, contracts)}
    try:
        import_definitions(RABBIT_API, definitions(made, users.vhost, contracts))
        admin = amqp.Connection(**parse_amqp_uri(amqp_uri).connection_kwargs())
        admin.connect()
        declare_events_exchange(admin.channel())
        admin.close()
        host = parse_amqp_uri(amqp_uri)
        sso = f"amqp://{prefix}sso:pw-sso@{host.hostport}/{urllib.parse.quote(users.vhost, safe='')}"
        with ConfirmedPublisher(sso) as publisher:
            assert publisher.publish([OutgoingMessage("directory.person.updated", b"{}", "e1",
                                                      "directory.person.updated")]) == 1
        assert "cannot declare the queues of consumer provisioning" in caplog.text
        assert "deploy/broker-users.md" in caplog.text
    finally:
        users.delete()


def _put(path: str, body: dict) -> None:
    import base64
    import urllib.request

    parts = urllib.parse.urlsplit(RABBIT_API)
    request = urllib.request.Request(f"{parts.scheme}://{parts.hostname}:{parts.port}{path}", method="PUT",
                                     data=json.dumps(body).encode(), headers={"content-type": "application/json"})
    token = base64.b64encode(f"{parts.username}:{parts.password}".encode()).decode()
    request.add_header("Authorization", f"Basic {token}")
    urllib.request.urlopen(request, timeout=10).read()

"""Liveness and readiness: real dependencies up, and down (wrong ports, a vanished database), named in the answer."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime

import amqp
import pytest
from click.testing import CliRunner

from app.cli import main
from relais.bus.outbox import pending_count
from relais.bus.topology import UNROUTED_QUEUE
from relais.config import parse_amqp_uri
from relais.db import writer
from relais.ops import health
from relais.ops.server import OpsApp, mount, serve_ops
from services.sso.events import login_failed
from tests.ops_helpers import RELAIS, Service, free_port, get, get_json

DEAD_BROKER = "amqp://guest:s3cret-pw@127.0.0.1:1/"


def test_each_check_says_where_it_looked_and_never_shows_a_password(amqp_uri, pg_engine, tmp_path):
    pg_url = pg_engine.url.render_as_string(hide_password=False)
    missing = tmp_path / "gone.db"
    checks = {
        "broker": health.broker_check(amqp_uri),
        "database": health.database_check(pg_url),
        "broker_down": health.broker_check(DEAD_BROKER, timeout=2),
        "database_down": health.database_check("postgresql://postgres:s3cret-pw@127.0.0.1:1/relais", timeout=2),
        "sqlite_missing": health.database_check(f"sqlite:///{missing}"),
        "store_folder": health.object_store_check(str(tmp_path)),
        "store_missing": health.object_store_check(str(tmp_path / "nothing-here")),
        "store_down": health.object_store_check("http://127.0.0.1:1", timeout=2),
    }
    results = {r.name: r for r in health.run_checks(checks)}
    assert [n for n, r in results.items() if r.ok] == ["broker", "database", "store_folder"]
    assert "vhost 'relais_test_" in results["broker"].detail
    assert "127.0.0.1:1" in results["broker_down"].detail and "Connection refused" in results["broker_down"].detail
    assert "127.0.0.1:1/relais" in results["database_down"].detail
    assert "does not exist" in results["sqlite_missing"].detail and not missing.exists()  # not created by the check
    assert "no such folder" in results["store_missing"].detail
    assert "object store at http://127.0.0.1:1" in results["store_down"].detail
    assert all(r.seconds < 5 for r in results.values())
    assert not any("s3cret-pw" in r.detail for r in results.values())


def test_an_s3_endpoint_that_answers_is_reachable():
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1",
                             "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        check = health.object_store_check(f"http://127.0.0.1:{port}")
        for _ in range(100):
            [result] = health.run_checks({"object_store": check})
            if result.ok:
                break
            time.sleep(0.1)
        assert result.ok, result.detail
    finally:
        proc.terminate()
        proc.wait(10)


def test_readyz_is_503_naming_what_is_down_and_the_probes_mount_in_another_app(amqp_uri, sqlite_engine):
    url = sqlite_engine.url.render_as_string(hide_password=False)
    ops = OpsApp("demo", {"broker": health.broker_check(amqp_uri), "database": health.database_check(url)})
    down = OpsApp("demo", {"broker": health.broker_check(DEAD_BROKER, timeout=2),
                           "database": health.database_check(url)})
    servers = [serve_ops(ops, host="127.0.0.1", port=0), serve_ops(down, host="127.0.0.1", port=0)]
    try:
        good, bad = (f"http://127.0.0.1:{s.port}" for s in servers)
        status, body = get_json(good + "/readyz")
        assert status == 200 and body["status"] == "ready" and body["down"] == []
        status, body = get_json(bad + "/readyz")
        assert status == 503 and body["status"] == "unavailable" and body["down"] == ["broker"]
        assert body["checks"]["database"]["ok"] and "127.0.0.1:1" in body["checks"]["broker"]["detail"]
        assert "s3cret-pw" not in str(body)
        assert get_json(bad + "/healthz")[0] == 200  # alive, though not ready
        assert get(good + "/nothing")[0] == 404
        status, text = get(good + "/metrics")
        assert status == 200 and "# TYPE relais_outbox_published_total counter" in text
    finally:
        for s in servers:
            s.stop()

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"the app"]

    from werkzeug.test import Client

    client = Client(mount(app, down))
    assert client.get("/readyz").status_code == 503
    assert client.get("/metrics").get_data() == b"the app"  # /metrics stays on the ops port
    assert client.get("/").get_data() == b"the app"


def test_relais_health_exits_by_readiness_and_names_the_service_it_expects(sqlite_engine):
    url = sqlite_engine.url.render_as_string(hide_password=False)
    ready = serve_ops(OpsApp("provisioning", {"database": health.database_check(url)}), host="127.0.0.1", port=0)
    unready = serve_ops(OpsApp("provisioning", {"broker": health.broker_check(DEAD_BROKER, timeout=1)}),
                        host="127.0.0.1", port=0)
    runner = CliRunner()
    try:
        ok = runner.invoke(main, ["health", "provisioning", "--port", str(ready.port)])
        assert ok.exit_code == 0 and "provisioning ready" in ok.output
        wrong = runner.invoke(main, ["health", "sso", "--port", str(ready.port)])
        assert wrong.exit_code == 1 and "answers for 'provisioning', not 'sso'" in wrong.output
        ko = runner.invoke(main, ["health", "provisioning", "--port", str(unready.port), "--json"])
        assert ko.exit_code == 1 and '"down": ["broker"]' in ko.output
        live = runner.invoke(main, ["health", "provisioning", "--port", str(unready.port), "--live"])
        assert live.exit_code == 0
    finally:
        ready.stop()
        unready.stop()
    nobody = runner.invoke(main, ["health", "provisioning", "--port", str(ready.port)])
    assert nobody.exit_code == 1 and "nothing answers" in nobody.output
    bad_port = runner.invoke(main, ["health", "provisioning"], env={"RELAIS_OPS_PORT": "ninety"})
    assert bad_port.exit_code == 2 and "RELAIS_OPS_PORT='ninety'" in bad_port.output


def test_serve_provisioning_with_the_broker_down_is_alive_but_not_ready(tmp_path):
    svc = Service("provisioning", {"RELAIS_DATA_DIR": str(tmp_path / "var"), "RELAIS_AMQP_URI": DEAD_BROKER,
                                   "RELAIS_TENANT": "test"}, tmp_path / "provisioning.log").wait_alive()
    try:
        for _ in range(100):  # the database is down too until the service has created it, then starting
            status, body = get_json(svc.url + "/readyz")
            if body["down"] != ["broker", "database"] and "starting" not in body["down"]:
                break
            time.sleep(0.1)
        assert status == 503 and body["service"] == "provisioning" and body["down"] == ["broker"]
        res = subprocess.run([RELAIS, "health", "provisioning", "--port", str(svc.port)], capture_output=True,
                             text=True, timeout=30)
        assert res.returncode == 1 and "provisioning not ready: broker down" in res.stderr
    finally:
        assert svc.stop() == 0  # SIGTERM: a clean stop
    assert "s3cret-pw" not in svc.logs()


def rpc_child(svc: Service) -> int:
    """The pid of the RPC process `relais serve` started (its only child process)."""
    children = subprocess.run(["pgrep", "-P", str(svc.proc.pid)], capture_output=True, text=True).stdout.split()
    assert len(children) == 1, children
    return int(children[0])


def gone(pid: int, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        if open(f"/proc/{pid}/stat").read().split()[2] == "Z":  # exited, waiting for its parent to read it
            return True
        time.sleep(0.1)
    return False


def test_serve_directory_turns_unready_when_its_database_vanishes(tmp_path, amqp_uri):
    data = tmp_path / "var"
    svc = Service("directory", {"RELAIS_DATA_DIR": str(data), "RELAIS_AMQP_URI": amqp_uri, "RELAIS_TENANT": "test"},
                  tmp_path / "directory.log").wait_alive()
    try:
        body = svc.wait_ready()
        assert set(body["checks"]) == {"broker", "database", "rpc"}
        rpc = body["checks"]["rpc"]["detail"]
        assert "'rpc-directory'" in rpc and "1 consumer(s)" in rpc
        res = subprocess.run([RELAIS, "health", "directory", "--port", str(svc.port)], capture_output=True, text=True,
                             timeout=30)
        assert res.returncode == 0, res.stderr
        assert "relais_outbox_backlog 0.0" in get(svc.url + "/metrics")[1]
        os.rename(data / "relais.db", data / "elsewhere.db")  # as if the volume went away
        status, body = get_json(svc.url + "/readyz")
        assert status == 503 and body["down"] == ["database"]
        assert "does not exist" in body["checks"]["database"]["detail"]
        assert svc.metric("relais_service_info", service="directory") == 1
    finally:
        svc.stop()


def test_the_rpc_process_lives_and_ends_with_the_main_one(tmp_path, amqp_uri):
    """RPC (nameko, under eventlet) runs in a process of its own, which ends the pair when it ends, and ends
    when the main process is told to stop or is killed."""
    env = {"RELAIS_DATA_DIR": str(tmp_path / "var"), "RELAIS_AMQP_URI": amqp_uri, "RELAIS_TENANT": "test"}
    svc = Service("directory", env, tmp_path / "one.log").wait_alive()
    svc.wait_ready()
    child = rpc_child(svc)
    main_modules = open(f"/proc/{svc.proc.pid}/maps").read()
    assert "greenlet" not in main_modules  # eventlet stays out of the main process
    os.kill(child, signal.SIGKILL)  # the RPC process dies: the main one stops, and says why
    assert svc.proc.wait(20) == 1
    assert f"RPC process (pid {child}) exited with status -9" in svc.logs()

    svc = Service("directory", env, tmp_path / "two.log").wait_alive()
    svc.wait_ready()
    child = rpc_child(svc)
    assert svc.stop() == 0 and gone(child)  # SIGTERM: both stop cleanly

    svc = Service("directory", env, tmp_path / "three.log").wait_alive()
    svc.wait_ready()
    child = rpc_child(svc)
    svc.proc.kill()  # the main process killed: its RPC process does not outlive it
    svc.proc.wait(10)
    assert gone(child)


def test_serve_sso_answers_probes_on_its_ops_port_and_its_own_and_relays_its_events(tmp_path, sqlite_engine,
                                                                                       amqp_uri):
    config = tmp_path / "sso.yaml"
    config.write_text("base_url: https://ent.example.org\ncookie: {secure: false}\nservices:\n"
                      "  - {id: app, prefix: 'https://app.example.org/', attributes: [uid]}\n")
    http_port = free_port()
    svc = Service("sso", {"RELAIS_DATABASE_URL": sqlite_engine.url.render_as_string(hide_password=False),
                          "RELAIS_SSO_CONFIG": str(config), "RELAIS_SSO_SECRET": "x" * 40,
                          "RELAIS_HTTP_PORT": str(http_port), "RELAIS_CONSUMERS": "none",
                          "RELAIS_AMQP_URI": amqp_uri},
                  tmp_path / "sso.log").wait_alive()
    try:
        assert svc.wait_ready()["checks"]["database"]["ok"]
        for _ in range(100):  # the sso's own port opens just after the ops one
            try:
                status, body = get_json(f"http://127.0.0.1:{http_port}/readyz", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        assert status == 200 and body["service"] == "sso"
        assert get(f"http://127.0.0.1:{http_port}/metrics")[0] == 404  # metrics only on the ops port
        assert "relais_service_info" in get(svc.url + "/metrics")[1]
        # Its login events leave its outbox for the bus (here relais.unrouted: no consumer is declared).
        with writer(sqlite_engine).begin() as conn:
            login_failed(conn, auth_source="educonnect", reason="no-account", now=datetime.now(UTC), tenant="test")
        for _ in range(100):
            if svc.metric("relais_outbox_published_total") >= 1:
                break
            time.sleep(0.1)
        with sqlite_engine.connect() as conn:
            assert pending_count(conn) == 0
        conn = amqp.Connection(**parse_amqp_uri(amqp_uri).connection_kwargs())
        conn.connect()
        message = conn.channel().basic_get(UNROUTED_QUEUE, no_ack=True)
        conn.close()
        assert message is not None and message.properties["type"] == "sso.login.failed"
    finally:
        assert svc.stop() == 0


def test_serve_refuses_a_bad_ops_port_and_a_service_it_does_not_know(tmp_path):
    env = {**os.environ, "RELAIS_DATA_DIR": str(tmp_path), "RELAIS_OPS_PORT": "70000"}
    res = subprocess.run([RELAIS, "serve", "provisioning"], env=env, capture_output=True, text=True, timeout=60)
    assert res.returncode == 2 and "RELAIS_OPS_PORT='70000' is not a TCP port" in res.stderr
    res = subprocess.run([RELAIS, "serve", "mail"], env=env, capture_output=True, text=True, timeout=60)
    assert res.returncode == 2 and "'mail' is not one of" in res.stderr
    taken = serve_ops(OpsApp("x", {}), host="127.0.0.1", port=0)
    try:
        env.update(RELAIS_OPS_PORT=str(taken.port), RELAIS_OPS_HOST="127.0.0.1")
        res = subprocess.run([RELAIS, "serve", "provisioning"], env=env, capture_output=True, text=True, timeout=60)
        assert res.returncode == 2 and f"cannot serve the ops endpoints on 127.0.0.1:{taken.port}" in res.stderr
    finally:
        taken.stop()


@pytest.mark.parametrize("value", ["yaml"])
def test_an_unknown_log_format_is_refused_by_name(value):
    res = CliRunner().invoke(main, ["config"], env={"RELAIS_LOG_FORMAT": value})
    assert res.exit_code == 2 and "RELAIS_LOG_FORMAT='yaml' is not one of text, json" in res.output

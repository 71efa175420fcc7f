"""The monitoring, running: a real Prometheus (from the package that brings promtool) with the compose
stack's scrape configuration and alert rules, scraping `relais serve` processes and the real RabbitMQ.

Every rule evaluates without error, every dashboard query is accepted, the panels of what runs have
data, and stopping a service puts its alerts in motion (pending: their `for` is minutes long).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.parse
from pathlib import Path

import pytest
import yaml

from tests.deploy.test_monitoring import DASHBOARDS, GRAFANA_VARIABLES, PROMETHEUS_CONFIG, RULES, panels, rules
from tests.ops_helpers import Service, free_port, get_json

RABBITMQ_PROMETHEUS = "127.0.0.1:15692"


class Prometheus:
    """A Prometheus server on a free port with `config`, its data and log in `folder`."""

    def __init__(self, config: dict, folder: Path) -> None:
        binary = shutil.which("prometheus")
        if binary is None:
            pytest.fail("the prometheus server is missing: scripts/ensure-services.sh installs it with promtool "
                        "(apt-get install prometheus)", pytrace=False)
        (folder / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.url = f"http://127.0.0.1:{free_port()}"
        self.log = folder / "prometheus.log"
        self._log = open(self.log, "wb")
        self.proc = subprocess.Popen(
            [binary, f"--config.file={folder / 'prometheus.yml'}", f"--storage.tsdb.path={folder / 'data'}",
             f"--web.listen-address={self.url.removeprefix('http://')}"], stdout=self._log, stderr=subprocess.STDOUT)

    def query(self, expr: str) -> list[dict]:
        status, body = get_json(f"{self.url}/api/v1/query?{urllib.parse.urlencode({'query': expr})}")
        assert status == 200 and body["status"] == "success", f"{expr}: {body}"
        return body["data"]["result"]

    def wait_for(self, expr: str, what: str, timeout: float = 90) -> list[dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                result = self.query(expr)
            except OSError:  # not listening yet
                result = []
            if result:
                return result
            time.sleep(0.5)
        raise AssertionError(f"{what}: {expr} stayed empty for {timeout:.0f} s\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)
        self._log.close()


def scrape_config(relais_ops: list[str], vhost: str) -> dict:
    """deploy/prometheus/prometheus.yml, its targets here, scraping every second, RabbitMQ's queues of one vhost."""
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    config["rule_files"] = [str(RULES)]
    for job in config["scrape_configs"]:
        if job["job_name"] == "relais":
            job["static_configs"] = [{"targets": relais_ops}]
        else:
            job["static_configs"] = [{"targets": [RABBITMQ_PROMETHEUS]}]
        if job["job_name"] == "rabbitmq-queues":
            job["params"]["vhost"] = [vhost]
    return config


@pytest.fixture
def provisioning(tmp_path, amqp_uri):
    svc = Service("provisioning", {"RELAIS_DATA_DIR": str(tmp_path / "var"), "RELAIS_AMQP_URI": amqp_uri,
                                   "RELAIS_TENANT": "test"}, tmp_path / "provisioning.log").wait_alive()
    svc.wait_ready()
    yield svc
    svc.stop()


def test_prometheus_runs_the_rules_and_the_dashboards_against_relais_and_rabbitmq(tmp_path, amqp_uri, provisioning):
    vhost = urllib.parse.unquote(amqp_uri.rsplit("/", 1)[1])
    prometheus = Prometheus(scrape_config([f"127.0.0.1:{provisioning.port}"], vhost), tmp_path)
    try:
        (up,) = prometheus.wait_for('up{job="relais"} == 1', "the provisioning process scraped")
        assert up["metric"]["instance"] == f"127.0.0.1:{provisioning.port}"
        prometheus.wait_for('rabbitmq_detailed_queue_consumers{queue="relais.q.provisioning"} == 1',
                            "RabbitMQ's queue metrics, with the provisioning consumer attached")
        prometheus.wait_for("rabbitmq_alarms_memory_used_watermark", "RabbitMQ's node metrics")
        prometheus.wait_for('relais_service_info{service="provisioning"}', "the service's info")
        prometheus.wait_for("relais_outbox_backlog", "the outbox backlog, read at each scrape")
        prometheus.wait_for('relais_messages_total{consumer="provisioning", outcome="dead"} == 0',
                            "the consumer's outcomes, at 0 from the start")

        # Every rule is loaded and evaluates without error; none fires on this healthy stack.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            groups = get_json(f"{prometheus.url}/api/v1/rules")[1]["data"]["groups"]
            loaded = [r for g in groups for r in g["rules"]]
            if loaded and all(r.get("lastEvaluation", "").startswith("2") and r["health"] != "unknown"
                              for r in loaded):
                break
            time.sleep(0.5)
        assert {r["name"] for r in loaded} == {r["alert"] for r in rules()}
        assert [(r["name"], r.get("lastError")) for r in loaded if r["health"] != "ok"] == []
        assert prometheus.query('ALERTS{alertname=~"Relais(TargetDown|QueueWithoutConsumer)"}') == []

        # Every panel's and variable's query is one Prometheus accepts.
        for path in DASHBOARDS:
            dashboard = json.loads(path.read_text())
            for panel in panels(dashboard):
                for target in panel.get("targets", []):
                    expr = target["expr"]
                    for variable, value in GRAFANA_VARIABLES.items():
                        expr = expr.replace(variable, value)
                    prometheus.query(expr)
        overview = {p["title"]: p for p in panels(json.loads((DASHBOARDS[0].parent / "relais-overview.json")
                                                             .read_text()))}
        assert prometheus.query(overview["Processes up"]["targets"][0]["expr"])[0]["value"][1] == "1"

        # The provisioning process stops: its target is down, its queue has no consumer; both alerts start.
        provisioning.stop()
        firing = prometheus.wait_for('ALERTS{alertname="RelaisQueueWithoutConsumer", queue="relais.q.provisioning"}',
                                     "the queue left without consumer")
        assert firing[0]["metric"]["alertstate"] == "pending"  # for 5 minutes before it fires
        prometheus.wait_for('ALERTS{alertname="RelaisTargetDown"}', "the stopped process's target")
    finally:
        prometheus.stop()

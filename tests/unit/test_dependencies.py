"""The runtime dependencies (pyproject.toml's `dependencies`, what the image installs) are what the code the image
runs imports: each one is used by it, and each library it imports is installed by them. What only the tests and
the benchmarks use (python3-saml, psutil...) is in the `test` extra, which `make venv` installs for them."""

from __future__ import annotations

import ast
import functools
import re
import sys
import tomllib
from importlib.metadata import PackageNotFoundError, packages_distributions, requires
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
RUNTIME = ("app", "relais", "services", "connectors")  # the packages the image installs
# Shipped in the connectors package for connector authors' tests (a pytest plugin, peers to test against): run
# under pytest only, with the test extra.
TEST_KITS = {"connectors/sdk/conformance.py", "connectors/sdk/strategies.py", "connectors/sdk/pytest_plugin.py",
             "connectors/testing.py"}
# Pinned without being imported, each for a reason.
PINNED_NOT_IMPORTED = {
    "greenlet": "eventlet's, pinned with it",
    "kombu": "nameko's transport, pinned with it",
    "pydantic": "what scim2-models builds on",
    "psycopg": "the PostgreSQL driver SQLAlchemy loads for postgresql:// URLs",
    "relais-connector-sdk": "connectors/sdk/ itself, a distribution of its own (connectors/sdk/pyproject.toml)",
}


def name(requirement: str) -> str:
    return re.sub(r"[-_.]+", "-", Requirement(requirement).name).lower()


def imported_modules(path: Path) -> set[str]:
    """The top-level names of the absolute imports of a module."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.add(node.module.split(".")[0])
    return out


@functools.cache
def runtime_imports() -> dict[str, str]:
    """Third-party top-level module -> the first runtime file importing it."""
    found: dict[str, str] = {}
    for package in RUNTIME:
        for path in sorted((ROOT / package).rglob("*.py")):
            where = str(path.relative_to(ROOT))
            if where in TEST_KITS:
                continue
            for module in imported_modules(path) - {*RUNTIME, "__future__"} - set(sys.stdlib_module_names):
                found.setdefault(module, where)
    return found


@functools.cache
def module_distributions() -> dict[str, list[str]]:
    return packages_distributions()


def distributions(module: str) -> set[str]:
    return {re.sub(r"[-_.]+", "-", d).lower() for d in module_distributions().get(module, [])}


def installed_by(requirements: list[str]) -> set[str]:
    """The distributions these requirements install, with theirs (no extras), as the installed metadata says."""
    seen: set[str] = set()
    todo = [r for r in requirements if Requirement(r).marker is None or Requirement(r).marker.evaluate()]
    while todo:
        req = Requirement(todo.pop())
        dist = re.sub(r"[-_.]+", "-", req.name).lower()
        if dist in seen:
            continue
        seen.add(dist)
        try:
            todo += [r for r in requires(req.name) or []
                     if Requirement(r).marker is None or Requirement(r).marker.evaluate({"extra": ""})]
        except PackageNotFoundError:
            pass
    return seen


def test_every_runtime_dependency_is_imported_by_the_code_the_image_runs():
    imported = {dist for module in runtime_imports() for dist in distributions(module)}
    unused = sorted(name(r) for r in PROJECT["dependencies"] if name(r) not in imported | set(PINNED_NOT_IMPORTED))
    assert unused == [], f"runtime dependencies nothing under {', '.join(RUNTIME)} imports (move them to the test " \
                         f"extra if the tests or benchmarks need them): {unused}"


def test_what_the_code_the_image_runs_imports_is_installed_without_the_extras():
    installed = installed_by(PROJECT["dependencies"])
    missing = {module: where for module, where in runtime_imports().items()
               if distributions(module) and not distributions(module) & installed}
    assert missing == {}, f"imported by the runtime but installed only by an extra (declare them): {missing}"


def test_python3_saml_is_for_the_tests_and_the_sso_benchmark_only():
    assert "python3-saml" not in {name(r) for r in PROJECT["dependencies"]}
    assert "python3-saml" in {name(r) for r in PROJECT["optional-dependencies"]["test"]}
    assert "onelogin" not in runtime_imports()
    assert "onelogin" in imported_modules(ROOT / "tools" / "bench" / "sso.py")  # which `make venv` installs for
    assert "install -q -e '.[test]'" in (ROOT / "Makefile").read_text()

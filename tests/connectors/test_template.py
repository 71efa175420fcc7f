"""`relais connectors new NAME` writes a connector's package (tests/connectors/test_sdk_package.py installs one in a
fresh virtual environment with the SDK alone and runs the kit on it: it passes as soon as it is made)."""
from __future__ import annotations

import json
import py_compile
import tomllib

from click.testing import CliRunner

from connectors.cli import connectors


def test_new_writes_a_package_declaring_its_connector(tmp_path):
    result = CliRunner().invoke(connectors, ["new", "acme-ent", "--dir", str(tmp_path), "--vertical", "homework",
                                             "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    root = tmp_path / "relais-connector-acme-ent"
    assert report == {"name": "acme-ent", "ok": True, "root": str(root), "vertical": "homework",
                      "files": ["pyproject.toml", "README.md", "acme-ent.example.yaml",
                                "acme_ent_connector/__init__.py", "acme_ent_connector/connector.py",
                                "tests/fake_api.py", "tests/test_conformance.py"]}
    project = tomllib.loads((root / "pyproject.toml").read_text())
    assert project["project"]["name"] == "relais-connector-acme-ent"
    assert project["project"]["entry-points"]["relais.connectors"] == {"acme-ent": "acme_ent_connector:CONNECTOR"}
    assert project["project"]["dependencies"] == ["relais-connector-sdk>=0.1,<0.2"]
    for path in root.rglob("*.py"):
        py_compile.compile(str(path), doraise=True)
    connector = (root / "acme_ent_connector" / "connector.py").read_text()
    assert 'VERTICAL = "homework"' in connector and "class AcmeEntExporter(Exporter)" in connector
    assert "client_secret_env: ACME_ENT_CLIENT_SECRET" in (root / "acme-ent.example.yaml").read_text()
    assert "$" not in connector.replace("${", "")  # every placeholder filled in


def test_new_refuses_bad_names_and_never_overwrites(tmp_path):
    runner = CliRunner()
    assert runner.invoke(connectors, ["new", "acme", "--dir", str(tmp_path)]).exit_code == 0
    (tmp_path / "relais-connector-acme" / "README.md").write_text("mine")
    for args, said in ((["acme"], "already exists: nothing written"),
                       (["webdav"], "taken by Relais"),
                       (["Acme ENT"], "lower-case letters, digits and single '-'"),
                       (["../escape"], "lower-case letters"),
                       (["a--b"], "single '-'")):
        result = runner.invoke(connectors, ["new", *args, "--dir", str(tmp_path)])
        assert result.exit_code == 2 and said in result.output, (args, result.output)
    assert (tmp_path / "relais-connector-acme" / "README.md").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["relais-connector-acme"]

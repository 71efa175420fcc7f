"""`relais connectors list|check`: what exists, and whether a configuration reaches its server."""
from __future__ import annotations

import json

import click
import pytest
from click.testing import CliRunner

from connectors.cli import connectors
from connectors.sdk import ConnectorConfig, Item
from connectors.testing import serve_wsgi, wsgidav_app
from connectors.webdav import WebDavImporter


@pytest.fixture
def dav(tmp_path):
    with serve_wsgi(wsgidav_app(tmp_path / "dav", {"relais": "pw-cli-1"})) as url:
        yield url + "/"


def test_the_command_is_part_of_relais():
    from app.cli import main

    assert CliRunner().invoke(main, ["--help"]).stdout.count("connectors ") == 1
    assert main.get_command(click.Context(main), "connectors") is connectors


def test_list_names_the_reference_connectors():
    result = CliRunner().invoke(connectors, ["list", "--json"])
    assert result.exit_code == 0, result.output
    rows = {r["name"]: r for r in json.loads(result.stdout)}
    assert rows["webdav"]["verticals"] == ["documents"] and rows["caldav"]["verticals"] == ["calendars"]
    assert rows["carddav"]["export"] and rows["carddav"]["import"]
    text = CliRunner().invoke(connectors, ["list"]).output
    assert "webdav" in text and "export/import" in text


def test_check_reaches_the_server_and_counts_an_owner(dav, tmp_path, monkeypatch):
    cfg = {"url": dav, "auth": {"type": "basic", "username": "relais", "password_env": "CLI_PW"}}
    monkeypatch.setenv("CLI_PW", "pw-cli-1")
    WebDavImporter(ConnectorConfig.from_mapping(cfg)).import_items(
        [Item.folder("2605692", "documents", "Cours"),
         Item.from_bytes("2605692", "documents", "Cours/a.txt", b"a")], stop_on_error=True)
    path = tmp_path / "ent-a.yaml"
    path.write_text(json.dumps(cfg))
    result = CliRunner().invoke(connectors, ["check", "webdav", "--config", str(path), "--owner", "2605692", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["ok"] and report["owners_first_page"] == 1 and report["owner"] == {"id": "2605692", "files": 1,
                                                                                     "folders": 1}
    assert "pw-cli-1" not in result.output
    text = CliRunner().invoke(connectors, ["check", "webdav", "--config", str(path), "--owner", "2605692"]).output
    assert text.startswith("webdav: ok, 1 owners; 2605692: 1 files in 1 folders")


def test_check_says_what_is_wrong(dav, tmp_path, monkeypatch):
    path = tmp_path / "ent-a.yaml"
    path.write_text(f"url: {dav}\nauth: {{type: basic, username: relais, password_env: CLI_PW}}\n")
    monkeypatch.delenv("CLI_PW", raising=False)
    result = CliRunner().invoke(connectors, ["check", "webdav", "--config", str(path)])
    assert result.exit_code == 1 and "CLI_PW" in result.output
    monkeypatch.setenv("CLI_PW", "wrong-pw-2")
    result = CliRunner().invoke(connectors, ["check", "webdav", "--config", str(path), "--json"])
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert "401" in report["error"] and "wrong-pw-2" not in result.output

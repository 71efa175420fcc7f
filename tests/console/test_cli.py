"""`relais console check-config` and `relais console audit`: what an operator runs beside the pages."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import yaml
from click.testing import CliRunner

from app.cli import main
from services.console.adapters.audit import Entry, record
from services.console.cli import RELEASED

SECRET = "cli-test-secret-" + "q" * 20


def test_check_config_prints_the_sso_registry_entry_and_refuses_a_bad_setting():
    env = {"RELAIS_CONSOLE_SECRET": SECRET, "RELAIS_CONSOLE_URL": "https://console.example.org",
           "RELAIS_CONSOLE_ADMINS": "A1,A2"}
    r = CliRunner().invoke(main, ["console", "check-config", "--json"], env=env)
    assert r.exit_code == 0, r.output
    report = json.loads(r.output)
    assert report["service"] == {"id": "console", "prefix": "https://console.example.org/callback/",
                                 "attributes": RELEASED, "logout": True}
    assert report["roles"]["administrator"] == ["A1", "A2"] and report["cookie_secure"] is True
    text = CliRunner().invoke(main, ["console", "check-config"], env=env)
    assert yaml.safe_load(text.output.split("(RELAIS_SSO_CONFIG):\n", 1)[1]) == [report["service"]]
    bad = CliRunner().invoke(main, ["console", "check-config"], env={**env, "RELAIS_CONSOLE_URL": "console"})
    assert bad.exit_code == 2 and "RELAIS_CONSOLE_URL='console'" in bad.output


def test_the_audit_log_newest_first_as_text_or_json(sqlite_engine):
    at = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
    record(sqlite_engine, Entry("D1", "sign-in", "ok", "10.0.0.7"), at)
    record(sqlite_engine, Entry("D1", "grant", "refused", "10.0.0.7", target="2001 ark:/1", uai="0750002B",
                                detail="outside role or UAI"), at.replace(minute=5))
    env = {"RELAIS_DATABASE_URL": sqlite_engine.url.render_as_string(hide_password=False)}
    r = CliRunner().invoke(main, ["console", "audit", "--json"], env=env)
    assert r.exit_code == 0, r.output
    entries = json.loads(r.output)
    assert [(e["action"], e["outcome"], e["address"]) for e in entries] == [
        ("grant", "refused", "10.0.0.7"), ("sign-in", "ok", "10.0.0.7")]
    assert entries[0]["at"].startswith("2026-12-07T10:05")
    text = CliRunner().invoke(main, ["console", "audit", "--limit", "1"], env=env).output.splitlines()
    assert len(text) == 1 and "grant" in text[0] and "0750002B" in text[0] and "outside role or UAI" in text[0]

"""The CAS service registry: which registered service a URL belongs to (rules/service_registry.py)."""

from __future__ import annotations

import pytest

from services.sso.config import parse_config
from services.sso.rules.service_registry import (
    ParsedUrl,
    RegisteredService,
    RegistryError,
    ServiceEntry,
    ServiceRegistry,
    check_entry,
    parse_service_url,
    safe_url,
)


def test_registry_matches_scheme_host_and_path_strictly():
    config = parse_config({"base_url": "https://ent.example", "services": [
        {"id": "exact", "url": "https://a.example/cas/login"},
        {"id": "prefix", "prefix": "https://b.example/app/"},
        {"id": "pattern", "pattern": r"^https://c\.example/(x|y)/[0-9]+"}]})
    reg = ServiceRegistry(config.services)
    ok = {"https://a.example/cas/login": "exact", "https://a.example/cas/login?next=/x": "exact",
          "https://A.EXAMPLE:443/cas/login": "exact", "https://b.example/app/deep/page?q=1": "prefix",
          "https://c.example/x/12": "pattern"}
    for url, expected in ok.items():
        assert reg.find(url).id == expected, url
    for url in ("http://a.example/cas/login", "https://a.example/cas/login/", "https://a.example:8443/cas/login",
                "https://a.example.evil/cas/login", "https://b.example/application", "https://b.example/app",
                "https://b.example/app/%2e%2e/admin", "https://c.example/x/12/more", "https://c.example/x/12.evil",
                "https://c.example/z/1", "https://user:pw@b.example/app/", "https://b.example\\@evil/app/",
                "https://b.example/app/\n", "//b.example/app/", "", None):
        assert reg.find(url) is None, url


def test_unsafe_entries_are_refused():
    def problem(match: str, value: str) -> str:
        with pytest.raises(RegistryError) as err:
            check_entry(ServiceEntry("x", match, value))
        return str(err.value)

    assert "must end its path with '/'" in problem("prefix", "https://b.example/app")
    assert "must end its path with '/'" in problem("prefix", "https://b.example/app/?q=1")
    assert "not a plain absolute http(s) URL" in problem("exact", "https://u@b.example/")
    assert "must start with ^https://" in problem("pattern", "https://c.example/.*")
    assert "name its host literally" in problem("pattern", r"^https://.*\.example/x")
    assert "name its host literally" in problem("pattern", "^https://c.example/x")  # an unescaped dot
    assert "unknown match kind" in problem("regex", "^https://c\\.example/")
    check_entry(ServiceEntry("ok", "pattern", r"^https://c\.example/(x|y)/[0-9]+"))


def test_what_a_registered_service_may_do_and_the_first_match_wins():
    registry = ServiceRegistry([ServiceEntry("narrow", "prefix", "https://a.example/app/admin/", ("uid",), True, False),
                                ServiceEntry("broad", "prefix", "https://a.example/app/")])
    narrow = registry.find("https://a.example/app/admin/x")
    assert narrow == RegisteredService("narrow", ("uid",), True, False)
    assert registry.find("https://a.example/app/x") == RegisteredService("broad", (), False, True)


def test_urls_for_the_logs_keep_no_query():
    assert safe_url("https://a.example/cas/login?ticket=ST-secret") == "https://a.example/cas/login"
    assert safe_url("https://u:p@a.example/") == "(malformed URL)" and safe_url(None) == "(malformed URL)"
    assert parse_service_url("HTTPS://A.EXAMPLE:443/x") == ParsedUrl("https", "a.example", "/x", "")
    assert parse_service_url("http://a.example:8080") == ParsedUrl("http", "a.example:8080", "/", "")

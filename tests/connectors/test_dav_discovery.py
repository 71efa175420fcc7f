"""CalDAV/CardDAV discovery (connectors.dav.discovery, RFC 6764 and RFC 5397) against Radicale: served at the root,
and under /dav/ behind a front that redirects /.well-known/ there (a reverse proxy's usual set-up) or not at all.
The caldav and carddav connectors with options.discover find the owners' homes from the server's address alone."""
from __future__ import annotations

import json
from urllib.parse import urlsplit

import pytest
from click.testing import CliRunner

from connectors.cli import connectors
from connectors.dav import discover
from connectors.sdk import (
    AuthError,
    BadResponse,
    ConfigError,
    ConnectorConfig,
    HttpClient,
    Item,
    RetryPolicy,
    open_exporter,
    open_importer,
)
from connectors.sdk.auth import BasicAuth, Secret
from connectors.testing import radicale_app, serve_wsgi, wsgidav_app

PASSWORD = "s3cret-discovery"
ENV = {"DAV_PASSWORD": PASSWORD}
EVENT = (b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//relais//tests//EN\r\nBEGIN:VEVENT\r\nUID:disc-1@relais\r\n"
         b"DTSTAMP:20260901T080000Z\r\nDTSTART:20260907T080000Z\r\nSUMMARY:Rentr\xc3\xa9e\r\nEND:VEVENT\r\n"
         b"END:VCALENDAR\r\n")
CARD = b"BEGIN:VCARD\r\nVERSION:3.0\r\nUID:disc-2@relais\r\nFN:Camille Martin\r\nN:Martin;Camille;;;\r\nEND:VCARD\r\n"


def behind_a_front(app, *, well_known: bool):
    """Radicale mounted at /dav/; the front redirects /.well-known/{caldav,carddav} to it (or answers 404)."""
    def front(environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path.rstrip("/") in ("/.well-known/caldav", "/.well-known/carddav") and well_known:
            start_response("301 Moved Permanently", [("Location", "/dav/"), ("Content-Length", "0")])
            return [b""]
        if path == "/dav" or path.startswith("/dav/"):
            inner = dict(environ, SCRIPT_NAME="/dav", PATH_INFO=path[len("/dav"):] or "/")
            return app(inner, start_response)
        start_response("404 Not Found", [("Content-Type", "text/plain"), ("Content-Length", "9")])
        return [b"not here\n"]
    return front


@pytest.fixture(scope="module")
def radicale_root(tmp_path_factory):
    with serve_wsgi(radicale_app(tmp_path_factory.mktemp("root"), {"relais": PASSWORD})) as url:
        yield url


@pytest.fixture(scope="module")
def radicale_dav(tmp_path_factory):
    app = radicale_app(tmp_path_factory.mktemp("dav"), {"relais": PASSWORD})
    with serve_wsgi(behind_a_front(app, well_known=True)) as url:
        yield url


def client(password: str = PASSWORD) -> HttpClient:
    return HttpClient("caldav", auth=BasicAuth("relais", Secret(password)), retry=RetryPolicy(attempts=1))


def path(url: str) -> str:
    return urlsplit(url).path


def test_radicale_at_the_root_is_found_through_its_well_known_uri(radicale_root):
    for service in ("caldav", "carddav"):
        found = discover(client(), radicale_root + "/", service)
        assert found.well_known
        assert (path(found.context_url), path(found.principal_url)) == ("/", "/relais/")
        assert [path(u) for u in found.calendar_homes] == [path(u) for u in found.addressbook_homes] == ["/relais/"]
        assert path(found.owners_base(service)) == "/"


def test_behind_a_front_the_redirect_leads_to_the_context_path(radicale_dav):
    found = discover(client(), radicale_dav, "caldav")  # only the server's address
    assert found.well_known
    assert (path(found.context_url), path(found.principal_url)) == ("/dav/", "/dav/relais/")
    assert [path(u) for u in found.calendar_homes] == ["/dav/relais/"]
    assert path(found.owners_base("carddav")) == "/dav/"
    assert found.to_dict()["principal_url"] == radicale_dav + "/dav/relais/"


def test_without_a_well_known_uri_the_url_given_is_asked(tmp_path):
    app = behind_a_front(radicale_app(tmp_path / "r", {"relais": PASSWORD}), well_known=False)
    with serve_wsgi(app) as url:
        found = discover(client(), url + "/dav/", "carddav")
        assert not found.well_known
        assert [path(u) for u in found.addressbook_homes] == ["/dav/relais/"]
        with pytest.raises(BadResponse) as info:  # the root is nothing: said, not guessed
            discover(client(), url + "/", "carddav")
        assert "current-user-principal" in str(info.value) and "/.well-known/carddav" in str(info.value)


def test_wrong_credentials_and_a_plain_webdav_server_are_clear_errors(radicale_dav, tmp_path):
    with pytest.raises(AuthError) as info:
        discover(client("wrong-password"), radicale_dav, "caldav")
    assert "HTTP 401" in str(info.value) and "wrong-password" not in str(info.value)
    with serve_wsgi(wsgidav_app(tmp_path / "files")) as url:  # WebDAV, neither CalDAV nor CardDAV
        with pytest.raises(BadResponse) as info:
            discover(client(), url + "/", "caldav")
    assert "not a CalDAV/CardDAV server" in str(info.value)


@pytest.mark.parametrize("name,vertical,ext,data", [("caldav", "calendars", "ics", EVENT),
                                                    ("carddav", "contacts", "vcf", CARD)])
def test_the_connectors_find_the_owners_homes_from_the_servers_address(radicale_dav, name, vertical, ext, data):
    config = {"url": radicale_dav, "options": {"discover": True},
              "auth": {"type": "basic", "username": "relais", "password_env": "DAV_PASSWORD"}}
    owner = f"2605692-{name}"
    items = [Item.folder(owner, vertical, "perso", metadata={"displayname": "Perso"}),
             Item.from_bytes(owner, vertical, f"perso/one.{ext}", data,
                             metadata={"media_type": "text/calendar" if ext == "ics" else "text/vcard"})]
    target = open_importer(name, config, vertical, environ=ENV)
    report = target.import_items(items)
    assert report.created == 2 and report.failed == 0, report.to_dict()
    assert path(target.base) == "/dav/"  # type: ignore[attr-defined]

    source = open_exporter(name, config, vertical, environ=ENV)
    assert owner in set(source.iter_owners())
    got = list(source.export(owner))
    assert [(i.id, i.kind) for i in got] == [("perso", "folder"), (f"perso/one.{ext}", "file")]
    assert got[1].content.read().replace(b"\r\n ", b"").count(b"disc-") == 1

    # where they went: the owner's home beside the account's own, as a connector told the exact URL sees it
    exact = open_exporter(name, {**config, "url": radicale_dav + "/dav/", "options": {}}, vertical, environ=ENV)
    assert [r.id for r in exact.iter_refs(owner)] == ["perso", f"perso/one.{ext}"]


def test_discover_must_be_a_boolean():
    with pytest.raises(ConfigError) as info:
        open_exporter("caldav", ConnectorConfig(url="http://127.0.0.1:9/", options={"discover": "yes"}))
    assert "options.discover must be true or false" in str(info.value)


def test_connectors_check_says_what_it_discovered(radicale_dav, tmp_path, monkeypatch):
    monkeypatch.setenv("DAV_PASSWORD", PASSWORD)
    config = tmp_path / "ent.yaml"
    config.write_text(f"url: {radicale_dav}\noptions: {{discover: true}}\n"
                      "auth: {type: basic, username: relais, password_env: DAV_PASSWORD}\n")
    result = CliRunner().invoke(connectors, ["check", "carddav", "--config", str(config), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["discovery"]["principal_url"] == radicale_dav + "/dav/relais/"
    assert report["discovery"]["addressbook_homes"] == [radicale_dav + "/dav/relais/"]
    text = CliRunner().invoke(connectors, ["check", "carddav", "--config", str(config)]).output
    assert f"discovered: principal {radicale_dav}/dav/relais/" in text and "(through /.well-known/)" in text
    assert PASSWORD not in result.output + text

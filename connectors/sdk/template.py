"""A new connector's package, ready to be filled in: ``relais connectors new NAME`` or, with the SDK
alone, ``python -m connectors.sdk.template NAME``.

It writes ``relais-connector-<name>/``: a ``pyproject.toml`` declaring the connector's entry point, the
connector (an exporter and an importer over a small JSON API), an example configuration, and tests
that run the conformance kit against ``tests/fake_api.py``, a local stand-in for the vendor's API.
Installed (``pip install -e '.[test]'``), it passes the kit at once; the vendor then replaces the
API calls marked ``REPLACE`` with its own, and the stand-in with its test server (connectors/GUIDE.md).
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from string import Template

from .items import VERTICALS

NAME_RE = re.compile(r"[a-z][a-z0-9-]{1,38}[a-z0-9]")
RESERVED = {"webdav", "caldav", "carddav", "edifice", "sdk", "relais"}


class TemplateError(ValueError):
    """The name or the destination cannot be used; the message says why."""


def names(name: str) -> dict[str, str]:
    """The names the skeleton uses: connector, distribution, package, class prefix."""
    if not NAME_RE.fullmatch(name) or "--" in name:
        raise TemplateError(f"connector name {name!r}: 3 to 40 lower-case letters, digits and single '-', "
                            "starting with a letter (e.g. 'myent')")
    if name in RESERVED:
        raise TemplateError(f"connector name {name!r} is taken by Relais; choose your ENT's name")
    return {"name": name, "dist": f"relais-connector-{name}", "package": f"{name.replace('-', '_')}_connector",
            "cls": "".join(part.capitalize() for part in name.split("-")), "upper": name.upper().replace("-", "_")}


def write_skeleton(name: str, dest: Path, *, vertical: str = "documents") -> list[Path]:
    """Write the package for connector ``name`` in ``dest/relais-connector-<name>/``; the files written."""
    if vertical not in VERTICALS:
        raise TemplateError(f"vertical {vertical!r} is not one of {', '.join(VERTICALS)}")
    values = {**names(name), "vertical": vertical}
    root = Path(dest) / values["dist"]
    if root.exists():
        raise TemplateError(f"{root} already exists: nothing written (choose another --dir or remove it)")
    files = {
        "pyproject.toml": PYPROJECT,
        "README.md": README,
        f"{values['name']}.example.yaml": EXAMPLE_CONFIG,
        f"{values['package']}/__init__.py": INIT,
        f"{values['package']}/connector.py": CONNECTOR,
        "tests/fake_api.py": FAKE_API,
        "tests/test_conformance.py": TEST,
    }
    written = []
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(Template(text).substitute(values), encoding="utf-8")
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m connectors.sdk.template",
                                     description="Write a new Relais connector's package, passing the kit at once.")
    parser.add_argument("name", help="the connector's name, e.g. myent")
    parser.add_argument("--dir", default=".", type=Path, help="where to write relais-connector-NAME/ (default: .)")
    parser.add_argument("--vertical", default="documents", choices=VERTICALS)
    parser.add_argument("--json", action="store_true", help="print the files written as JSON")
    args = parser.parse_args(argv)
    try:
        written = write_skeleton(args.name, args.dir, vertical=args.vertical)
    except TemplateError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({"name": args.name, "root": str(written[0].parent), "files": [str(p) for p in written]}))
    else:
        print(f"wrote {written[0].parent}/ ({len(written)} files). Next:\n  cd {written[0].parent}\n"
              "  pip install -e '.[test]'\n  pytest")
    return 0


PYPROJECT = '''\
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "$dist"
version = "0.1.0"
description = "Relais connector for $name: $vertical in and out of the Relais vault."
requires-python = ">=3.11"
dependencies = ["relais-connector-sdk>=0.1,<0.2"]

[project.optional-dependencies]
test = ["relais-connector-sdk[kit]>=0.1,<0.2"]

# How Relais finds the connector: `relais connectors list` shows it once this package is installed.
[project.entry-points."relais.connectors"]
$name = "$package:CONNECTOR"

[tool.setuptools]
packages = ["$package"]

[tool.pytest.ini_options]
testpaths = ["tests"]
'''

README = '''\
# $dist

A Relais connector for $name ($vertical), made by `relais connectors new $name`.

```sh
pip install -e '.[test]'     # the SDK and its conformance kit come along
pytest                       # the kit, against tests/fake_api.py (a local stand-in for your API)
pytest --conformance-examples 50   # more generated item sets
```

Next: replace what is marked `REPLACE` in `$package/connector.py` with your API's calls, and the
stand-in in `tests/test_conformance.py` with your test server. The guide (connectors/GUIDE.md in
Relais) says what each check of the kit means and how to fix its usual failures.
'''

EXAMPLE_CONFIG = '''\
# relais connectors check $name --config $name.example.yaml
url: https://api.$name.example/relais/
auth: {type: oauth2, token_url: "https://id.$name.example/oauth/token", client_id: relais,
       client_secret_env: ${upper}_CLIENT_SECRET}
timeout: 60
retries: {attempts: 5, base_delay: 0.25, max_delay: 8, deadline: 120}
rate_limit: 20
workers: 8
options: {page_size: 100}
'''

INIT = '''\
"""Relais connector for $name ($vertical). Declared in pyproject.toml (entry point group relais.connectors)."""
from connectors.sdk.registry import ConnectorInfo

from .connector import NAME, VERTICAL, ${cls}Exporter, ${cls}Importer

CONNECTOR = ConnectorInfo(
    NAME, (VERTICAL,), "$vertical of $name",
    exporter=lambda config, vertical: ${cls}Exporter(config),
    importer=lambda config, vertical: ${cls}Importer(config),
    options={"page_size": "items per listing page (default 100)"},
)

__all__ = ["CONNECTOR", "${cls}Exporter", "${cls}Importer"]
'''

CONNECTOR = '''\
"""$name: $vertical of an ENT in and out of the Relais vault.

The API below is the local stand-in's (tests/fake_api.py), a small JSON API:

    GET  owners?start=&limit=                         {"owners": [...], "next": cursor or null}
    GET  owners/<owner>/items?start=&limit=           {"items": [{id, path, kind, metadata, size, sha256}], "next"}
    GET  owners/<owner>/items/<id>                    one item's description, 404 if none
    GET  owners/<owner>/content/<id>                  its bytes
    PUT  owners/<owner>/items/<id>                    {path, kind, metadata, content (base64)}

REPLACE each call marked so with your API's. What the SDK does for you: retries, rate limit,
auth (basic, bearer, OAuth 2.0), checksums on download, refusing bad items before write().
"""
from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import quote

from connectors.sdk import Body, ConnectorConfig, Exporter, Importer, Item, ItemRef, NotFound, Outcome, Page
from connectors.sdk.http import announced_sha256, iter_body
from connectors.sdk.items import ref_label

NAME = "$name"
VERTICAL = "$vertical"


class Api:
    """The vendor's API over the SDK's HttpClient (REPLACE the paths and shapes with yours)."""

    def __init__(self, config: ConnectorConfig) -> None:
        self.base = config.require_url(NAME).rstrip("/") + "/"
        self.http = config.http_client(NAME)
        self.page_size = int(config.options.get("page_size", 100))

    def url(self, *segments: str, **query: str) -> str:
        path = "/".join(quote(s, safe="") for s in segments)
        return self.base + path + ("?" + "&".join(f"{k}={quote(v, safe='')}" for k, v in query.items())
                                   if query else "")

    def get_json(self, url: str, item: str | None = None) -> Any:
        resp = self.http.request("GET", url, item=item, headers={"Accept": "application/json"})
        try:
            return resp.json()
        finally:
            resp.close()


class ${cls}Exporter(Exporter):
    def __init__(self, config: ConnectorConfig) -> None:
        super().__init__(NAME, VERTICAL, retry=config.retry)
        self.api = Api(config)

    def owners(self, cursor: str | None = None) -> Page[str]:
        page = self.api.get_json(self.api.url("owners", start=cursor or "0", limit=str(self.api.page_size)))  # REPLACE
        return Page([str(o) for o in page["owners"]], page.get("next"))

    def list(self, owner: str, cursor: str | None = None) -> Page[ItemRef]:
        # REPLACE: one page of the owner's items; folders before what they hold; the cursor a string
        page = self.api.get_json(self.api.url("owners", owner, "items", start=cursor or "0",
                                              limit=str(self.api.page_size)), item=f"owner {owner}")
        refs = [ItemRef(owner, VERTICAL, row["id"], row["path"], row["kind"], row.get("metadata") or {},
                        row.get("size"), row.get("sha256")) for row in page["items"]]
        return Page(refs, page.get("next"))

    def open(self, ref: ItemRef) -> Body:
        url = self.api.url("owners", ref.owner, "content", ref.id)  # REPLACE
        resp = self.api.http.request("GET", url, item=ref_label(ref), stream=True)
        length = resp.headers.get("Content-Length")
        return Body(iter_body(resp, connector=NAME, item=ref_label(ref)),
                    size=int(length) if length and length.isdigit() else None,
                    sha256=announced_sha256(resp.headers), url=url, close=resp.close)

    def close(self) -> None:
        self.api.http.close()


class ${cls}Importer(Importer):
    def __init__(self, config: ConnectorConfig) -> None:
        super().__init__(NAME, VERTICAL)
        self.api = Api(config)

    def write(self, item: Item) -> Outcome:
        """Called by put() once the SDK has checked the item. Idempotent: UNCHANGED when already there."""
        url = self.api.url("owners", item.owner, "items", item.id)  # REPLACE
        wanted = {"path": item.path, "kind": item.kind, "metadata": dict(item.metadata), "sha256": item.sha256}
        try:
            current = self.api.get_json(url, item=item.label)
        except NotFound:
            current = None
        if current is not None and {k: current.get(k) for k in wanted} == wanted:
            return Outcome.UNCHANGED
        body = json.dumps({"path": item.path, "kind": item.kind, "metadata": dict(item.metadata),
                           "content": base64.b64encode(item.content.read()).decode("ascii")}).encode()
        resp = self.api.http.request("PUT", url, item=item.label, body=body,
                                     headers={"Content-Type": "application/json"})
        resp.close()
        return Outcome.CREATED if current is None else Outcome.UPDATED

    def close(self) -> None:
        self.api.http.close()
'''

FAKE_API = '''\
"""A local stand-in for $name's API, in memory (REPLACE it with your own test server, or keep it as the
reference of what the connector expects). Standard library only."""
from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit


class Store:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.owners: dict[str, dict[str, dict]] = {}


def _handler(store: Store) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms wait on each answer

        def log_message(self, *args) -> None:
            pass

        def _send(self, status: int, body: bytes, kind: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _json(self, status: int, doc: object) -> None:
            self._send(status, json.dumps(doc).encode())

        def _route(self) -> tuple[list[str], dict[str, str]]:
            parts = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            return [unquote(s) for s in parts.path.strip("/").split("/")], query

        def do_GET(self) -> None:
            segs, query = self._route()
            start, limit = int(query.get("start", "0")), int(query.get("limit", "100"))
            with store.lock:
                if segs == ["owners"]:
                    names = sorted(o for o, items in store.owners.items() if items)
                    nxt = str(start + limit) if start + limit < len(names) else None
                    return self._json(200, {"owners": names[start:start + limit], "next": nxt})
                if len(segs) == 3 and segs[0] == "owners" and segs[2] == "items":
                    rows = sorted(store.owners.get(segs[1], {}).values(), key=lambda r: r["path"])
                    nxt = str(start + limit) if start + limit < len(rows) else None
                    return self._json(200, {"items": [{k: v for k, v in r.items() if k != "content"}
                                                      for r in rows[start:start + limit]], "next": nxt})
                if len(segs) == 4 and segs[0] == "owners" and segs[2] in ("items", "content"):
                    row = store.owners.get(segs[1], {}).get(segs[3])
                    if row is None:
                        return self._json(404, {"error": "no such item"})
                    if segs[2] == "content":
                        return self._send(200, row["content"], "application/octet-stream")
                    return self._json(200, {k: v for k, v in row.items() if k != "content"})
            self._json(404, {"error": "no such path"})

        def do_PUT(self) -> None:
            segs, _ = self._route()
            doc = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
            if len(segs) != 4 or segs[0] != "owners" or segs[2] != "items":
                return self._json(404, {"error": "no such path"})
            data = base64.b64decode(doc["content"])
            row = {"id": segs[3], "path": doc["path"], "kind": doc["kind"], "metadata": doc["metadata"],
                   "size": len(data), "sha256": hashlib.sha256(data).hexdigest(), "content": data}
            with store.lock:
                items = store.owners.setdefault(segs[1], {})
                status = 200 if segs[3] in items else 201
                items[segs[3]] = row
            self._json(status, {"id": segs[3]})

    return Handler


@contextlib.contextmanager
def serve_fake_api() -> Iterator[str]:
    """Serve an empty stand-in until the block ends; yields its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(Store()))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
'''

TEST = '''\
"""The Relais conformance kit on this connector: its declaration, then round trips, idempotence and bad input
against the local stand-in (tests/fake_api.py). REPLACE the stand-in with your test server when you have one."""
import pytest
from fake_api import serve_fake_api

from connectors.sdk import ConnectorConfig
from connectors.sdk.conformance import ConformancePair, ConnectorConformance, ConnectorDeclaration
from $package import ${cls}Exporter, ${cls}Importer


@pytest.fixture(scope="module")
def api_url():
    with serve_fake_api() as url:
        yield url


class TestDeclaration(ConnectorDeclaration):
    @pytest.fixture
    def connector_name(self):
        return "$name"

    @pytest.fixture
    def connector_config(self, api_url):
        return {"url": api_url}


class TestConformance(ConnectorConformance):
    @pytest.fixture
    def conformance_pair(self, api_url):
        config = ConnectorConfig.from_mapping({"url": api_url, "options": {"page_size": 3}})
        pair = ConformancePair(exporter=${cls}Exporter(config), importer=${cls}Importer(config))
        yield pair
        pair.exporter.close()
        pair.importer.close()
'''

if __name__ == "__main__":
    sys.exit(main())

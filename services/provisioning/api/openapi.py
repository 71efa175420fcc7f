"""`GET /openapi.json`: the OpenAPI 3.1 description of this API, `contracts/openapi.yaml`, as JSON.

The document is the contract apps code against; the tests hold the API to it
(tests/provisioning/test_openapi.py). It is read once per process, from the
contracts folder every Relais process reads (`RELAIS_CONTRACTS_DIR` in the image).
"""

from __future__ import annotations

import functools
import json

import yaml
from werkzeug.wrappers import Request, Response

from relais.bus.contracts import contracts_dir

PATH = "/openapi.json"
DOCUMENT = "openapi.yaml"


@functools.cache
def document_bytes() -> bytes:
    """The document as JSON bytes, read and converted on first use."""
    source = contracts_dir() / DOCUMENT
    try:
        loaded = yaml.safe_load(source.read_text(encoding="utf-8"))
    except OSError as exc:
        raise RuntimeError(f"the OpenAPI document is missing: {source} (set RELAIS_CONTRACTS_DIR)") from exc
    return json.dumps(loaded, ensure_ascii=False).encode()


def serve(request: Request) -> Response:
    """The document to anyone (no token: it says how to get one); GET or HEAD only."""
    if request.method not in ("GET", "HEAD"):
        body = {"error": "invalid_request", "error_description": f"{request.method} is not offered on {PATH}: use GET"}
        return Response(json.dumps(body), status=405, content_type="application/json", headers={"Allow": "GET, HEAD"})
    return Response(document_bytes(), content_type="application/json")

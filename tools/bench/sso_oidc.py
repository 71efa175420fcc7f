"""bench-sso's OpenID Connect part: full code flows on live sessions, against Authlib's bare token signing.

One flow, as a relying party and a browser make it, through the WSGI application in-process (as the SAML logins
are): GET /oidc/authorize with the SSO cookie (PKCE S256, nonce: a one-time code stored), POST /oidc/token
(client_secret_basic: the code consumed, PKCE checked, access and ID tokens issued, the ID token signed RS256),
GET /oidc/userinfo (the access token looked up, the claims read from the directory). Each answer is checked (the
code comes back with its state, the ID token names the client, userinfo the pairwise subject). The sessions are
opened beforehand, as the SAML SP opens them after a national login, for people of the academy.

The floor, in the same run, alternating blocks with the flows: Authlib's own JWT signing of an ID token of the
same claims with the same key, loaded once (`authlib.jose.jwt.encode`), the one piece of cryptography a flow
cannot avoid.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import time
import warnings
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from relais.db import writer
from services.sso import sessions

CLIENT = "bench-rp"
REDIRECT = "https://rp.bench.invalid/cb"
SECRET_ENV = "RELAIS_BENCH_OIDC_SECRET"


def oidc_section(workdir: Path) -> dict[str, Any]:
    """The benchmark's `oidc:` section (an RSA key, one confidential client); sets the client's secret."""
    key_file = workdir / "keys" / "oidc.pem"
    key_file.parent.mkdir(parents=True, exist_ok=True)
    if not key_file.exists():
        key = rsa.generate_private_key(65537, 2048)
        key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
    os.environ.setdefault(SECRET_ENV, secrets.token_urlsafe(32))
    return {"keys": [{"id": "bench", "key_file": str(key_file)}],
            "clients": [{"id": CLIENT, "secret_env": SECRET_ENV, "redirect_uris": [REDIRECT],
                         "scopes": ["openid", "profile"], "claims": ["given_name", "family_name", "ENTPersonProfils"]}]}


def flows(app: Any, call: Callable[..., tuple[int, dict[str, list[str]], bytes]], jointures: list[str], *,
          block: int, warmup: int) -> dict[str, Any]:
    """Time `len(jointures) - warmup` full code flows and the signing floor; the figures for the JSON line."""
    cookie = app.config.cookie.name
    now = datetime.now(UTC)
    with writer(app.engine).begin() as conn:
        sids = [sessions.open_session(conn, person_jointure=j, auth_source="educonnect", national_id=None,
                                      attributes={}, now=now, tenant=app.tenant).id for j in jointures]
    provider = app.oidc.provider()
    if provider is None:
        raise SystemExit("the benchmark's SSO configuration has no oidc section")
    basic = "Basic " + base64.b64encode(f"{CLIENT}:{os.environ[SECRET_ENV]}".encode()).decode()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from authlib.jose import JsonWebKey  # type: ignore[import-untyped]  # the floor: Authlib's own
        from authlib.jose import jwt as authlib_jwt
    floor_key = JsonWebKey.import_key(provider.keys.signing.key.as_pem(private=True))  # loaded once, as ours
    claims = {"iss": provider.settings.issuer, "sub": "x" * 52, "aud": CLIENT, "azp": CLIENT, "iat": 0, "exp": 600,
              "auth_time": 0, "nonce": "n" * 22, "at_hash": "h" * 22, "sid": "s" * 40}

    def one(sid: str, jointure: str) -> None:
        verifier = secrets.token_urlsafe(32)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
        query = urlencode({"client_id": CLIENT, "response_type": "code", "redirect_uri": REDIRECT,
                           "scope": "openid profile", "state": "st", "nonce": "n" * 22, "code_challenge": challenge,
                           "code_challenge_method": "S256"})
        status, headers, _ = call(app, "GET", "/oidc/authorize", query=query, cookies={cookie: sid})
        location = urlsplit(headers.get("location", [""])[0])
        answer = parse_qs(location.query)
        if status != 302 or answer.get("state") != ["st"] or "code" not in answer:
            raise SystemExit(f"/oidc/authorize answered {status} ({location.geturl()[:80]})")
        form = urlencode({"grant_type": "authorization_code", "code": answer["code"][0], "redirect_uri": REDIRECT,
                          "code_verifier": verifier}).encode()
        status, _, body = call(app, "POST", "/oidc/token", body=form, headers={"authorization": basic})
        if status != 200 or b'"id_token"' not in body:
            raise SystemExit(f"/oidc/token answered {status}: {body[:200]!r}")
        tokens = json.loads(body)
        status, _, body = call(app, "GET", "/oidc/userinfo",
                               headers={"authorization": f"Bearer {tokens['access_token']}"})
        if status != 200 or provider.subject(provider.settings.clients[CLIENT], jointure).encode() not in body:
            raise SystemExit(f"/oidc/userinfo answered {status}: {body[:200]!r}")

    def sign() -> None:
        authlib_jwt.encode({"alg": "RS256", "kid": "bench"}, claims, floor_key)

    pairs = list(zip(sids, jointures, strict=True))
    for sid, jointure in pairs[:warmup]:
        one(sid, jointure)
        sign()
    timed = pairs[warmup:]
    ours_s = ours_cpu = floor_s = floor_cpu = 0.0
    for start in range(0, len(timed), block):
        part = timed[start:start + block]
        t, c = time.perf_counter(), time.process_time()
        for _ in part:
            sign()
        floor_s += time.perf_counter() - t
        floor_cpu += time.process_time() - c
        t, c = time.perf_counter(), time.process_time()
        for sid, jointure in part:
            one(sid, jointure)
        ours_s += time.perf_counter() - t
        ours_cpu += time.process_time() - c
    n = len(timed)
    return {"oidc_flows": n, "oidc_flows_per_s": round(n / ours_s, 1), "oidc_flows_per_cpu_s": round(n / ours_cpu, 1),
            "oidc_floor_sign_per_s": round(n / floor_s, 1), "oidc_floor_sign_per_cpu_s": round(n / floor_cpu, 1),
            "oidc_ratio": round((n / ours_s) / (n / floor_s), 3)}

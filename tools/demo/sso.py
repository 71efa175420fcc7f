"""The demo's SSO step: a pupil and a parent of the sample academy log in through a local ÉduConnect
stand-in (a pysaml2 IdP, tools/local_idp.py) and into a CAS application, which validates its ticket; the pupil
then opens an OpenID Connect client (an Éléa-like platform) on the same session.

Everything runs in-process: the SSO service's WSGI application (its SAML SP and CAS server, over the demo's
database, with the directory imported just before) is called through werkzeug's test client, a browser with a
cookie jar; the IdP answers the AuthnRequests the SP sends it. Keys are made at run time in the demo's data
folder. The app validates the ticket on /cas/p3/serviceValidate and the step prints who logged in, with the
attributes the app's release policy gives it. The OIDC client runs the code flow with PKCE, checks the ID token's
signature with the provider's published JWKS (joserfc), and reads userinfo: the step prints the pairwise subject
and the claims its policy releases.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import warnings
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

from lxml import etree

ENT = "https://ent.demo.invalid"
IDP = "https://educonnect.demo.invalid"
APP = "https://cahier-de-textes.demo.invalid/"
RELEASED = ["uid", "ENTPersonProfils", "ENTPersonStructRattachUAI", "ENTEleveClasses", "ENTAuxPersRelEleveEleve",
            "displayName"]
CAS = "{http://www.yale.edu/tp/cas}"
OIDC_CLIENT = "elea"
OIDC_REDIRECT = "https://elea.demo.invalid/auth/oidc/"
OIDC_CLAIMS = ["given_name", "family_name", "ENTPersonProfils", "ENTEleveClasses"]
OIDC_SECRET_ENV = "RELAIS_DEMO_OIDC_SECRET"


def run(engine, tenant: str, folder: Path, pupil_jointure: str) -> bool:
    """Log the pupil and one of their legal guardians in; True when both reached the app as themselves."""
    from services.directory.api import Directory
    from services.sso.app import SsoApp
    from services.sso.config import parse_config
    from services.sso.sp.config import parse_saml
    from services.sso.sp.messages import sp_metadata
    from tools.local_idp import LocalIdp, write_key_pair

    warnings.filterwarnings("ignore", module="saml2")  # pysaml2's own deprecation warnings: not the demo's

    directory = Directory(engine, tenant)
    pupil = directory.get_person(pupil_jointure)
    guardians = directory.legal_guardians(pupil_jointure)
    if pupil is None or not guardians:
        print(f"pupil {pupil_jointure} or their legal guardians are not in the directory")
        return False
    parent = guardians[0]
    uai = (directory.get_structure(pupil["structure"]) or {}).get("uai", "")

    idp = LocalIdp(folder, base_url=IDP)
    (folder / "idp-metadata.xml").write_bytes(idp.metadata())
    sp_key, sp_cert = write_key_pair(folder, "sp")
    os.environ.setdefault(OIDC_SECRET_ENV, secrets.token_urlsafe(32))  # the client's secret, never in the file
    config = parse_config({
        "base_url": ENT,
        "services": [{"id": "cahier-de-textes", "prefix": APP, "attributes": RELEASED}],
        "saml": {"keys": [{"id": "sp", "key_file": str(sp_key), "cert_file": str(sp_cert)}],
                 "requested_attributes": ["FrEduCtPersonAffiliation", "FrEduCtId", "FrEduVecteur", "FrEduUrlRetour",
                                          "sn", "givenName"],
                 "idps": [{"id": "educonnect", "kind": "educonnect", "label": "ÉduConnect (local stand-in)",
                           "metadata_file": str(folder / "idp-metadata.xml"), "want_assertions_signed": True}]},
        "oidc": {"keys": [{"id": "oidc", "key_file": str(sp_key)}],  # the demo reuses its RSA key; not in production
                 "clients": [{"id": OIDC_CLIENT, "secret_env": OIDC_SECRET_ENV, "redirect_uris": [OIDC_REDIRECT],
                              "scopes": ["openid", "profile"], "claims": OIDC_CLAIMS}]},
    }, "demo sso configuration")
    # They trust each other by metadata, as with the real ÉduConnect: the IdP's file above, ours given to it.
    saml = parse_saml(config.saml, where="demo", base_url=ENT)
    if saml is None:
        raise SystemExit("the demo's SSO configuration has no saml section")
    idp.trust_sp(sp_metadata(saml))
    app = SsoApp(engine, config, directory=directory, tenant=tenant, secret=os.urandom(32))
    print(f"SSO service {ENT} (SAML SP + CAS server + OIDC provider), IdP {IDP} (pysaml2, EduConnect attributes), "
          f"CAS app {APP}, OIDC client {OIDC_CLIENT}")

    def vector(kind: str, person: dict) -> str:  # FrEduVecteur: type|NOM|Prénom|structRattachId|UAI
        return "|".join((kind, (person["last_name"] or "").upper(), person["first_name"] or "",
                         pupil["struct_rattach_id"], uai))

    logins = [
        ("pupil", pupil, {"FrEduCtPersonAffiliation": ["eleve2d"], "FrEduCtId": ["demo-fe-pupil"],
                          "FrEduVecteur": [vector("4", pupil)], "sn": [pupil["last_name"]],
                          "givenName": [pupil["first_name"]], "FrEduUrlRetour": [f"{IDP}/logout-done"]}),
        ("parent", parent, {"FrEduCtPersonAffiliation": ["resp2d"], "FrEduCtId": ["demo-fe-parent"],
                            "FrEduVecteur": [vector("2", parent)], "sn": [parent["last_name"]],
                            "givenName": [parent["first_name"]], "FrEduUrlRetour": [f"{IDP}/logout-done"]}),
    ]
    ok = True
    try:
        for kind, person, attributes in logins:
            browser, user, released = _log_in(app, idp, attributes)
            shown = "; ".join(f"{k}={', '.join(v)}" for k, v in released.items() if k in RELEASED)
            print(f"{kind} {person['first_name']} {person['last_name']} (FrEduVecteur {attributes['FrEduVecteur'][0]})"
                  f"\n  -> the app's ticket names {user}: {shown}")
            ok = ok and user == person["jointure"]
            if kind == "pupil":
                claims = _oidc(app, browser)
                shown = "; ".join(f"{k}={', '.join(v) if isinstance(v, list) else v}" for k, v in claims.items()
                                  if k != "sub")
                print(f"  -> the OIDC client {OIDC_CLIENT} (same session, code flow with PKCE, ID token checked "
                      f"with the JWKS) knows sub={claims['sub']}: {shown}")
                ok = ok and claims.get("given_name") == person["first_name"]
    finally:
        app.close()
    return ok


def _log_in(app, idp, attributes: dict[str, list[str]]) -> tuple[object, str | None, dict[str, list[str]]]:
    """A browser going to the app's CAS login, through the IdP and back; then the app validating its ticket.

    Returns the browser (with its session cookie), the user the ticket names (None if the validation failed) and the
    attributes released."""
    from werkzeug.test import Client

    browser = Client(app)
    service = urlencode({"service": APP})
    r = browser.get(f"{ENT}/cas/login?{service}")  # no session yet: to the SAML SP
    r = browser.get(_local(r.headers["Location"]))  # a signed AuthnRequest to the IdP
    acs, form = idp.answer(r.headers["Location"], attributes)
    r = browser.post(acs, data=form)  # the IdP's auto-posting form: the SP checks it, opens the session
    if r.status_code != 302:
        raise SystemExit(f"the SAML SP refused the login: {r.status_code} {r.get_data(as_text=True)[:300]}")
    r = browser.get(_local(r.headers["Location"]))  # back at /cas/login, now with a session: a ticket
    ticket = parse_qs(urlsplit(r.headers["Location"]).query)["ticket"][0]
    answer = Client(app).get(f"{ENT}/cas/p3/serviceValidate?{urlencode({'service': APP, 'ticket': ticket})}")
    root = etree.fromstring(answer.get_data())
    user = root.findtext(f"{CAS}authenticationSuccess/{CAS}user")
    released: dict[str, list[str]] = {}
    for element in root.iterfind(f"{CAS}authenticationSuccess/{CAS}attributes/*"):
        released.setdefault(etree.QName(element).localname, []).append(element.text or "")
    return browser, user, released


def _oidc(app, browser) -> dict:
    """The OIDC client's code flow with PKCE on the browser's session; the claims it ends up with."""
    from joserfc import jwt
    from joserfc.jwk import KeySet
    from werkzeug.test import Client

    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    nonce = secrets.token_urlsafe(16)
    query = urlencode({"client_id": OIDC_CLIENT, "response_type": "code", "scope": "openid profile",
                       "redirect_uri": OIDC_REDIRECT, "state": "demo", "nonce": nonce, "code_challenge": challenge,
                       "code_challenge_method": "S256"})
    r = browser.get(f"{ENT}/oidc/authorize?{query}")
    answer = parse_qs(urlsplit(r.headers["Location"]).query)
    if "code" not in answer:
        raise SystemExit(f"the OIDC provider refused the login: {answer}")
    client = Client(app)  # the platform's server, not the browser
    secret = os.environ[OIDC_SECRET_ENV]
    auth = base64.b64encode(f"{OIDC_CLIENT}:{secret}".encode()).decode()
    r = client.post(f"{ENT}/oidc/token", data={"grant_type": "authorization_code", "code": answer["code"][0],
                                               "redirect_uri": OIDC_REDIRECT, "code_verifier": verifier},
                    headers={"Authorization": f"Basic {auth}"})
    tokens = json.loads(r.get_data())
    keys = KeySet.import_key_set(json.loads(client.get(f"{ENT}/oidc/jwks").get_data()))
    id_token = jwt.decode(tokens["id_token"], keys, algorithms=["RS256", "ES256"]).claims
    if id_token["aud"] != OIDC_CLIENT or id_token["nonce"] != nonce or id_token["iss"] != f"{ENT}/oidc":
        raise SystemExit(f"the ID token is not for this client and login: {id_token}")
    info = json.loads(client.get(f"{ENT}/oidc/userinfo",
                                 headers={"Authorization": f"Bearer {tokens['access_token']}"}).get_data())
    if info["sub"] != id_token["sub"]:
        raise SystemExit("userinfo names another subject than the ID token")
    return dict(info)


def _local(location: str) -> str:
    """A Location relative to the SSO service made absolute (the test client needs the scheme and host)."""
    return location if "://" in location else ENT + location

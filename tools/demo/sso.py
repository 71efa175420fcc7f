"""The demo's SSO step: a pupil and a parent of the sample academy log in through a local ÉduConnect
stand-in (a pysaml2 IdP, tools/local_idp.py) and into a CAS application, which validates its ticket.

Everything runs in-process: the SSO service's WSGI application (its SAML SP and CAS server, over the demo's
database, with the directory imported just before) is called through werkzeug's test client, a browser with a
cookie jar; the IdP answers the AuthnRequests the SP sends it. Keys are made at run time in the demo's data
folder. The app validates the ticket on /cas/p3/serviceValidate and the step prints who logged in, with the
attributes the app's release policy gives it.
"""

from __future__ import annotations

import os
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
    config = parse_config({
        "base_url": ENT,
        "services": [{"id": "cahier-de-textes", "prefix": APP, "attributes": RELEASED}],
        "saml": {"keys": [{"id": "sp", "key_file": str(sp_key), "cert_file": str(sp_cert)}],
                 "requested_attributes": ["FrEduCtPersonAffiliation", "FrEduCtId", "FrEduVecteur", "FrEduUrlRetour",
                                          "sn", "givenName"],
                 "idps": [{"id": "educonnect", "kind": "educonnect", "label": "ÉduConnect (local stand-in)",
                           "metadata_file": str(folder / "idp-metadata.xml"), "want_assertions_signed": True}]},
    }, "demo sso configuration")
    # They trust each other by metadata, as with the real ÉduConnect: the IdP's file above, ours given to it.
    saml = parse_saml(config.saml, where="demo", base_url=ENT)
    if saml is None:
        raise SystemExit("the demo's SSO configuration has no saml section")
    idp.trust_sp(sp_metadata(saml))
    app = SsoApp(engine, config, directory=directory, tenant=tenant, secret=os.urandom(32))
    print(f"SSO service {ENT} (SAML SP + CAS server), IdP {IDP} (pysaml2, EduConnect attributes), "
          f"CAS app {APP}")

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
            user, released = _log_in(app, idp, attributes)
            shown = "; ".join(f"{k}={', '.join(v)}" for k, v in released.items() if k in RELEASED)
            print(f"{kind} {person['first_name']} {person['last_name']} (FrEduVecteur {attributes['FrEduVecteur'][0]})"
                  f"\n  -> the app's ticket names {user}: {shown}")
            ok = ok and user == person["jointure"]
    finally:
        app.close()
    return ok


def _log_in(app, idp, attributes: dict[str, list[str]]) -> tuple[str | None, dict[str, list[str]]]:
    """A browser going to the app's CAS login, through the IdP and back; then the app validating its ticket.

    Returns the user the ticket names (None if the validation failed) and the attributes released."""
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
    return user, released


def _local(location: str) -> str:
    """A Location relative to the SSO service made absolute (the test client needs the scheme and host)."""
    return location if "://" in location else ENT + location

"""The console over real parts: sign-in through the SSO (pysaml2 IdP, CAS 3 validation), roles and UAIs,
403s logged, CSRF, manual grants through provisioning, the audit log, headers and cookies, languages.

One world for the module (SSO, directory, provisioning and console: a few seconds to build); each test
signs in afresh. Browser tests (chromium) are in test_browser.py.
"""

from __future__ import annotations

import base64
import time
from urllib.parse import parse_qs, urlsplit

import requests
from lxml import html
from sqlalchemy import select

from services.console.adapters.tables import audit
from tests.console.conftest import S1, S2
from tests.saml_peers import Browser

ATLAS = "ark:/49591/atlas"


def audit_rows(world, actor: str) -> list[tuple]:
    with world.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(select(audit.c.action, audit.c.outcome, audit.c.target, audit.c.uai,
                                                      audit.c.address).where(audit.c.actor == actor)
                                               .order_by(audit.c.id))]


def csrf(response: requests.Response) -> str:
    return html.fromstring(response.content).xpath("//input[@name='csrf']/@value")[0]


def search(world, browser: Browser, text: str) -> requests.Response:
    home = browser.get(f"{world.url}/directory", timeout=10)
    assert home.status_code == 200
    return browser.post(f"{world.url}/directory", data={"q": text, "csrf": csrf(home)}, timeout=10)


def links(response: requests.Response) -> dict[str, str]:
    return {a.text_content(): a.get("href") for a in html.fromstring(response.content).xpath("//main//a")}


def test_a_head_of_school_signs_in_through_the_sso_as_its_resource_manager(world):
    b = world.sign_in("D1")
    r = b.response
    assert r.status_code == 200 and r.url == f"{world.url}/", r.text
    assert any("/cas/login" in u for u in b.trail) and any("/saml/acs" in u for u in b.trail)
    assert "Responsable d’affectation" in r.text and S1 in r.text and S2 not in r.text
    assert ("sign-in", "ok", None, None, "127.0.0.1") in audit_rows(world, "D1")
    session = next(c for c in b.cookies if c.name == "relais_console")
    assert session.has_nonstandard_attr("HttpOnly") and session.get_nonstandard_attr("SameSite") == "Lax"
    sealed = base64.urlsafe_b64decode(session.value + "=" * (-len(session.value) % 4))
    assert b'"D1"' not in sealed  # sealed (encrypted), not merely signed: the JSON is nowhere in it


def test_a_manager_finds_people_of_their_school_only_and_no_name_goes_in_a_url(world):
    b = world.sign_in("D1")
    found = search(world, b, "nom1001")
    assert found.status_code == 200 and "Élodie Nom1001" in found.text
    person_url = links(found)["Élodie Nom1001"]
    assert "1001" not in person_url and "Nom" not in person_url
    assert all("1001" not in u and "nom" not in u.lower() for u in b.trail + [found.url])
    assert "Nom2001" not in search(world, b, "nom2001").text  # of S2: not theirs
    assert search(world, b, "INE1001").text.count("Nom1001") >= 1
    page = b.get(world.url + person_url, timeout=10)
    assert page.status_code == 200
    assert "Dictionnaire" in page.text and "rule:dico-pupils" in page.text  # a grant with its cause
    assert "Paul Durand" in page.text  # a relative
    parent = b.get(world.url + links(page)["Paul Durand"], timeout=10)
    assert parent.status_code == 200 and links(parent)["Élodie Nom1001"].startswith("/people/")  # their child
    actions = [a for a, *_ in audit_rows(world, "D1")]
    assert "search" in actions and "person" in actions
    assert not [row for row in audit_rows(world, "D1") if "nom1001" in str(row).lower()]  # never the text searched


def test_outside_one_s_role_or_uai_is_403_and_logged(world):
    b = world.sign_in("D1")
    other = b.get(f"{world.url}/people/{world.ref('2001')}", timeout=10)
    assert other.status_code == 403 and "hors de votre rôle" in other.text
    assert b.get(f"{world.url}/health", timeout=10).status_code == 403
    assert b.get(f"{world.url}/audit", timeout=10).status_code == 403
    refused = [(a, t) for a, o, t, _, _ in audit_rows(world, "D1") if o == "refused"]
    assert ("person", "2001") in refused and ("health", None) in refused and ("audit", None) in refused
    page = b.get(f"{world.url}/people/{world.ref('1001')}", timeout=10)
    grant = b.post(f"{world.url}/people/{world.ref('1001')}/grant",
                   data={"csrf": csrf(page), "resource": ATLAS, "uai": S2}, timeout=10, allow_redirects=False)
    assert grant.status_code == 403
    assert ("grant", "refused", f"1001 {ATLAS}", S2, "127.0.0.1") in audit_rows(world, "D1")
    # a relative is in their children's schools: R1 (parent of 1001, in S1) is not for the head of S2
    assert world.sign_in("D2").get(f"{world.url}/people/{world.ref('R1')}", timeout=10).status_code == 403


def test_a_manager_grants_and_takes_back_by_hand_through_provisioning(world):
    b = world.sign_in("D1")
    url = f"{world.url}/people/{world.ref('1001')}"
    page = b.get(url, timeout=10)
    assert "Attribuer une ressource" in page.text
    done = b.post(f"{url}/grant", data={"csrf": csrf(page), "resource": ATLAS, "uai": S1}, timeout=10)
    assert done.status_code == 200 and "La ressource est attribuée." in done.text and "manual:D1" in done.text
    assert world.provisioning.grants("1001")[("1001", ATLAS)] == "manual:D1"
    again = b.post(f"{url}/grant", data={"csrf": csrf(done), "resource": ATLAS, "uai": S1}, timeout=10)
    assert "Refus de l’attribution" in again.text and "already holds" in again.text  # provisioning's reason
    back = b.post(f"{url}/revoke", data={"csrf": csrf(again), "resource": ATLAS, "uai": S1}, timeout=10)
    assert "La ressource est retirée." in back.text
    assert ("1001", ATLAS) not in world.provisioning.grants("1001")
    outcomes = [(a, o) for a, o, t, *_ in audit_rows(world, "D1") if t == f"1001 {ATLAS}"]
    assert ("grant", "ok") in outcomes and ("grant", "failed") in outcomes and ("revoke", "ok") in outcomes


def test_a_form_without_its_csrf_token_is_refused_and_changes_nothing(world):
    b = world.sign_in("D1")
    url = f"{world.url}/people/{world.ref('1001')}"
    for token in (None, "forged"):
        data = {"resource": ATLAS, "uai": S1} | ({"csrf": token} if token else {})
        assert b.post(f"{url}/grant", data=data, timeout=10, allow_redirects=False).status_code == 403
    assert ("1001", ATLAS) not in world.provisioning.grants("1001")
    assert b.post(f"{world.url}/directory", data={"q": "nom"}, timeout=10).status_code == 403
    assert ("grant (CSRF)", "refused") in [(a, o) for a, o, *_ in audit_rows(world, "D1")]


def test_the_administrator_sees_health_and_the_audit_log(world):
    world.sign_in("D1")
    b = world.sign_in("A1")
    assert "Administrateur" in b.response.text
    health = b.get(f"{world.url}/health", timeout=30)
    assert health.status_code == 200 and "relais.q.provisioning" in health.text
    assert '<meta http-equiv="refresh"' not in health.text
    live = b.get(f"{world.url}/health?live=1", timeout=30)
    assert '<meta http-equiv="refresh" content="30">' in live.text and "Arrêter l’actualisation" in live.text
    log = b.get(f"{world.url}/audit", timeout=10)
    assert log.status_code == 200
    rows = html.fromstring(log.content).xpath("//tbody/tr")
    assert rows and any("D1" in r.text_content() and "sign-in" in r.text_content() for r in rows)
    found = search(world, b, "nom2001")
    assert "Élodie Nom2001" in found.text  # tenant-wide
    assert b.post(f"{world.url}/people/{world.ref('2001')}/grant", data={"csrf": csrf(found), "resource": ATLAS,
                  "uai": S2}, timeout=10, allow_redirects=False).status_code == 403  # only managers grant


def test_the_administrator_sees_the_last_import_and_its_rejected_records(world):
    b = world.sign_in("A1")
    page = b.get(f"{world.url}/imports", timeout=10)
    assert page.status_code == 200
    rows = [r.text_content() for r in html.fromstring(page.content).xpath("//table[2]/tbody/tr")]
    assert len(rows) == 1 and "PersEducNat" in rows[0] and "P_Complet_20260904_PersEducNat_0000.xml" in rows[0]
    assert ("imports", "ok") in [(a, o) for a, o, *_ in audit_rows(world, "A1")]
    assert world.sign_in("D1").get(f"{world.url}/imports", timeout=10).status_code == 403


def test_the_catalogue_shows_licences_held_and_seats_per_school_a_manager_seeing_only_theirs(world):
    def pools(response) -> dict[str, dict[str, list[str]]]:
        """Per resource (its h2), the rows of its table: UAI -> [held, seats]."""
        out: dict[str, dict[str, list[str]]] = {}
        for h2 in html.fromstring(response.content).xpath("//main//h2"):
            rows = out.setdefault(h2.text_content(), {})
            for sibling in h2.itersiblings():
                if sibling.tag == "h2":
                    break
                for r in sibling.xpath("self::table/tbody/tr"):
                    rows[r.xpath("th")[0].text_content()] = [td.text_content().strip() for td in r.xpath("td")]
        return out

    admin = pools(world.sign_in("A1").get(f"{world.url}/resources", timeout=10))
    assert admin["Dictionnaire"] == {S1: ["1", "-"], S2: ["1", "-"]}  # unlimited: no seats
    manager = world.sign_in("D1")
    page = manager.get(f"{world.url}/resources", timeout=10)
    assert page.status_code == 200 and pools(page)["Dictionnaire"] == {S1: ["1", "-"]}
    url = f"{world.url}/people/{world.ref('1001')}"
    manager.post(f"{url}/grant", data={"csrf": csrf(manager.get(url, timeout=10)), "resource": ATLAS, "uai": S1},
                 timeout=10)
    try:
        assert pools(manager.get(f"{world.url}/resources", timeout=10))["Atlas"] == {S1: ["1", "5"]}  # quota 5
    finally:
        manager.post(f"{url}/revoke", data={"csrf": csrf(manager.get(url, timeout=10)), "resource": ATLAS, "uai": S1},
                     timeout=10)
    assert world.sign_in("P1").get(f"{world.url}/resources", timeout=10).status_code == 403  # not the DPO's


def test_someone_without_a_console_role_is_refused_at_sign_in(world):
    b = world.sign_in("T1")
    assert b.response.status_code == 403 and "aucun rôle" in b.response.text
    assert audit_rows(world, "T1")[-1][:2] == ("sign-in", "refused")
    assert b.get(f"{world.url}/directory", timeout=10, allow_redirects=False).headers["Location"] == "/login"


def test_a_callback_that_did_not_start_here_or_a_forged_ticket_is_refused(world):
    b = Browser()
    r = b.get(f"{world.url}/callback/", params={"state": "x", "ticket": "ST-forged"}, timeout=10)
    assert r.status_code == 403
    start = b.get(f"{world.url}/login", timeout=10, allow_redirects=False)
    service = parse_qs(urlsplit(start.headers["Location"]).query)["service"][0]
    state = parse_qs(urlsplit(service).query)["state"][0]
    r = b.get(f"{world.url}/callback/", params={"state": state, "ticket": "ST-forged"}, timeout=10)
    assert r.status_code == 403 and "n’a pas confirmé" in r.text
    with world.engine.connect() as conn:
        details = [d for (d,) in conn.execute(select(audit.c.detail).where(audit.c.action == "sign-in",
                                                                           audit.c.outcome == "refused"))]
    assert any("INVALID_TICKET" in (d or "") for d in details)


def test_every_answer_has_a_strict_csp_and_no_cache(world):
    r = requests.get(f"{world.url}/", timeout=10)
    csp = r.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src" not in csp and "frame-ancestors 'none'" in csp
    assert f"form-action 'self' {world.sso.url}" in csp
    assert r.headers["X-Frame-Options"] == "DENY" and r.headers["Cache-Control"] == "no-store"
    assert r.headers["Referrer-Policy"] == "no-referrer"
    assert requests.get(f"{world.url}/readyz", timeout=10).status_code == 200


def test_english_is_available_by_header_or_by_choice(world):
    r = requests.get(f"{world.url}/", headers={"Accept-Language": "en-GB,en;q=0.9"}, timeout=10)
    assert '<html lang="en">' in r.text and "Sign in" in r.text
    b = requests.Session()
    b.get(f"{world.url}/language/en", timeout=10)
    assert "Sign in with your usual account" in b.get(f"{world.url}/", timeout=10).text
    b.get(f"{world.url}/language/fr", timeout=10)
    assert '<html lang="fr">' in b.get(f"{world.url}/", headers={"Accept-Language": "en"}, timeout=10).text
    assert requests.get(f"{world.url}/language/xx", timeout=10).status_code == 404


def test_a_session_ends_when_unused_and_sign_out_ends_it(world, monkeypatch):
    b = world.sign_in("D1")
    page = b.get(f"{world.url}/directory", timeout=10)
    console = _console(world)
    monkeypatch.setattr(console, "clock", lambda: time.time() + world.settings.idle_s + 5)
    late = b.get(f"{world.url}/directory", timeout=10, allow_redirects=False)
    assert late.status_code == 303 and late.headers["Location"] == "/login"
    monkeypatch.undo()
    out = b.post(f"{world.url}/logout", data={"csrf": csrf(page)}, timeout=10, allow_redirects=False)
    assert out.status_code == 303 and out.headers["Location"] == f"{world.sso.url}/cas/logout"
    assert b.get(f"{world.url}/directory", timeout=10, allow_redirects=False).status_code == 303


def _console(world):
    """The ConsoleApp inside the mounted probes (relais.ops.server.mount)."""
    from services.console.entrypoints.http import ConsoleApp

    for cell in world._late.app.__closure__ or ():
        if isinstance(cell.cell_contents, ConsoleApp):
            return cell.cell_contents
    raise AssertionError("no ConsoleApp in the mounted app")


def test_a_rule_change_is_previewed_per_school_with_names_and_saved_only_once_previewed(world):
    from tests.console.conftest import RULES

    b = world.sign_in("A1")
    page = b.get(f"{world.url}/rules", timeout=10)
    assert page.status_code == 200 and "dico-pupils" in page.text
    text = ("grace_days: 30\nrules:\n- {id: dico-pupils, resource: 'ark:/49591/dico', profiles: [National_ELV]}\n"
            f"- {{id: atlas-6a, resource: '{ATLAS}', structures: ['{S1}'], classes: ['6A']}}\n")
    try:
        preview = b.post(f"{world.url}/rules/preview", data={"csrf": csrf(page), "rules": text, "names": "1"},
                         timeout=30)
        assert preview.status_code == 200, preview.text
        rows = [r.text_content() for r in html.fromstring(preview.content).xpath("//tbody/tr")]
        assert len(rows) == 1 and S1 in rows[0] and "Élodie Nom1001" in rows[0], rows
        assert "+1" in preview.text and "−0" in preview.text
        assert ("1001", ATLAS) not in world.provisioning.grants("1001")  # a preview saves nothing
        everywhere = b.post(f"{world.url}/rules/preview", data={"csrf": csrf(page), "rules": text.replace(
            f"structures: ['{S1}'], classes: ['6A']", "profiles: []")}, timeout=30)
        counts = {r.xpath("th")[0].text_content(): [td.text_content() for td in r.xpath("td")]
                  for r in html.fromstring(everywhere.content).xpath("//tbody/tr")}
        assert counts == {S1: ["5", "0"], S2: ["3", "0"]}  # every account of each school, staff too (C1 in S2)
        form = {i.get("name"): i.get("value") for i in html.fromstring(preview.content).xpath(
            "//form[@action='/rules/save']//input")}
        forged = b.post(f"{world.url}/rules/save", data={**form, "rules": text + "# changed after the preview\n"},
                        timeout=30)
        assert forged.status_code == 409 and ("1001", ATLAS) not in world.provisioning.grants("1001")
        saved = b.post(f"{world.url}/rules/save", data=form, timeout=30)
        assert saved.status_code == 200 and "Les règles sont enregistrées" in saved.text
        assert world.provisioning.grants("1001")[("1001", ATLAS)] == "rule:atlas-6a"
        broken = b.post(f"{world.url}/rules/preview", data={"csrf": csrf(saved), "rules": "rules: [\n"}, timeout=10)
        assert broken.status_code == 422 and "line 2" in broken.text
        unknown = b.post(f"{world.url}/rules/preview", data={"csrf": csrf(saved), "rules": text.replace(
            "ark:/49591/dico", "ark:/49591/nothing")}, timeout=10)
        assert unknown.status_code == 422 and "ark:/49591/nothing" in unknown.text
        actions = [(a, o) for a, o, *_ in audit_rows(world, "A1")]
        assert ("rules-preview", "ok") in actions and ("rules-save (no preview)", "refused") in actions
        assert ("rules-save", "ok") in actions and ("rules-preview", "failed") in actions
        assert world.sign_in("D1").get(f"{world.url}/rules", timeout=10).status_code == 403
    finally:
        world.provisioning.load(catalogue=None, rules=RULES)


def test_signing_out_at_the_sso_ends_the_console_session_too(world):
    """The SSO's back-channel logout names the ticket the console's session was opened with."""
    b = world.sign_in("D1")
    assert b.get(f"{world.url}/directory", timeout=10, allow_redirects=False).status_code == 200
    b.go(world.sso.url + "/cas/logout")  # the ENT's logout: the SSO tells its CAS services
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and ("sso-logout", "ok") not in [(a, o) for a, o, *_ in audit_rows(world, "D1")]:
        time.sleep(0.1)
    assert ("sso-logout", "ok") in [(a, o) for a, o, *_ in audit_rows(world, "D1")]
    assert b.get(f"{world.url}/directory", timeout=10, allow_redirects=False).headers["Location"] == "/login"
    forged = requests.post(f"{world.url}/callback/", data={"logoutRequest": "<x/>"}, timeout=10)
    assert forged.status_code == 200 and forged.text == "0\n"
    assert ("sso-logout", "refused") in [(a, o) for a, o, *_ in audit_rows(world, "-")]


def test_a_sealed_cookie_is_worthless_once_signed_out(world):
    b = world.sign_in("D1")
    page = b.get(f"{world.url}/directory", timeout=10)
    cookie = b.cookies.get("relais_console")
    b.post(f"{world.url}/logout", data={"csrf": csrf(page)}, timeout=10, allow_redirects=False)
    replay = requests.get(f"{world.url}/directory", cookies={"relais_console": cookie}, timeout=10,
                          allow_redirects=False)
    assert replay.status_code == 303 and replay.headers["Location"] == "/login"  # closed server-side


def test_the_collectivite_reads_the_usage_statistics_with_charts_and_csv_and_nothing_else(world):
    b = world.sign_in("C1")
    assert "Collectivité" in b.response.text
    page = b.get(f"{world.url}/usage", timeout=30)
    assert page.status_code == 200, page.text
    tree = html.fromstring(page.content)
    row = [c.text_content().strip() for c in tree.xpath("//table[1]/tbody/tr[1]/*")]
    assert row == ["Atlas", "15", "10", "5", "67\u00a0%"]  # every school: granted 12 + 3, used 10, unused, rate
    assert [o.get("value") for o in tree.xpath("//select[@id='period']/option")] == ["2026-11"]
    weeks = [[c.text_content().strip() for c in r] for r in tree.xpath("//table[2]/tbody/tr")]
    assert weeks == [["2026-11-02", "12"], ["2026-11-09", "11"], ["2026-11-16", "10"],
                     ["2026-11-23", "secret statistique"]]  # 9 people that week: under 10, suppressed

    s2 = b.get(f"{world.url}/usage", params={"period": "2026-11", "structure": S2}, timeout=30)
    cells = [c.text_content().strip() for c in html.fromstring(s2.content).xpath("//table[1]/tbody/tr[1]/*")]
    assert cells == ["Atlas"] + ["secret statistique"] * 4  # 3 pupils: never shown, never as 0

    for chart in ("licences", "active-users"):
        svg = b.get(f"{world.url}/usage/{chart}.svg", params={"period": "2026-11"}, timeout=30)
        assert svg.status_code == 200 and svg.headers["Content-Type"].startswith("image/svg+xml")
        root = html.etree.fromstring(svg.content)
        assert root.get("role") == "img" and root.find("{http://www.w3.org/2000/svg}desc") is not None
        assert "script" not in svg.headers["Content-Security-Policy"]
    assert "Atlas" in b.get(f"{world.url}/usage/licences.svg", params={"period": "2026-11"}, timeout=30).text

    got = b.get(f"{world.url}/usage/usage.csv", params={"period": "2026-11", "structure": S1}, timeout=30)
    assert got.status_code == 200 and got.headers["Content-Type"].startswith("text/csv")
    assert got.headers["Content-Disposition"] == f'attachment; filename="usage-2026-11-{S1}.csv"'
    lines = got.text.splitlines()
    assert lines[0].startswith("period,grain,start,indicator,structure")
    assert f"2026-11,month,2026-11-01,licences_used,{S1},*,*,{ATLAS},10,published" in lines
    assert all(f",{S2}," not in line for line in lines)

    assert b.get(f"{world.url}/usage", params={"period": "2025-01"}, timeout=10).status_code == 404
    assert b.get(f"{world.url}/usage", params={"structure": "x\"y"}, timeout=10).status_code == 404
    assert b.get(f"{world.url}/directory", timeout=10).status_code == 403  # read-only: usage only
    assert b.get(f"{world.url}/resources", timeout=10).status_code == 403
    logged = audit_rows(world, "C1")
    assert ("usage", "ok", None, S2, "127.0.0.1") in logged and ("usage-csv", "ok", None, S1, "127.0.0.1") in logged
    assert ("directory", "refused", None, None, "127.0.0.1") in logged


def test_usage_is_the_administrators_and_the_collectivites_only(world):
    assert world.sign_in("A1").get(f"{world.url}/usage", timeout=30).status_code == 200
    for who in ("D1", "P1"):
        b = world.sign_in(who)
        assert b.get(f"{world.url}/usage", timeout=10).status_code == 403
        assert b.get(f"{world.url}/usage/usage.csv", params={"period": "2026-11"}, timeout=10).status_code == 403
        assert ("usage", "refused", None, None, "127.0.0.1") in audit_rows(world, who)


def test_the_sso_page_shows_what_each_service_platform_and_client_receives_and_open_sessions(world):
    b = world.sign_in("A1")
    page = b.get(f"{world.url}/sso", timeout=10)
    assert page.status_code == 200, page.text
    tables = {t.xpath("string(caption)").strip(): [[c.text_content().strip() for c in r]
                                                    for r in t.xpath("tbody/tr")]
              for t in html.fromstring(page.content).xpath("//table")}
    console = next(r for r in tables["Services CAS"] if r[0] == "console")
    assert "ENTPersonFonctions" in console[2] and console[3] == "non"
    assert int(console[4]) >= 1  # A1's own session signed into the console (others' too: the module's)
    assert tables["Plateformes SAML"] == [["Maths en ligne", "maths", "persistent",
                                           "GARPersonProfils, sn (urn:oid:2.5.4.4)"]]
    assert tables["Clients OpenID Connect"] == [["moodle", "openid, profile", "given_name, ENTPersonProfils", "oui"]]
    by_source = dict(tables["Sessions ouvertes par moyen de connexion"])
    assert int(next(iter(by_source.values()))) >= 1
    assert "agent-A1" not in page.text and "a1@ac-test.fr" not in page.text  # sessions counted, never listed
    assert "ne conserve pas encore ses refus" in page.text
    assert ("sso", "ok", None, None, "127.0.0.1") in audit_rows(world, "A1")
    for who in ("D1", "P1", "C1"):
        assert world.sign_in(who).get(f"{world.url}/sso", timeout=10).status_code == 403


def test_the_vault_page_shows_each_role_its_part_of_the_contract_end(world):
    def page_of(who: str) -> dict[str, list[list[str]]]:
        page = world.sign_in(who).get(f"{world.url}/vault", timeout=10)
        assert page.status_code == 200, page.text
        return {t.xpath("string(caption)").strip(): [[c.text_content().strip() for c in r] for r in t.xpath("tbody/tr")]
                for t in html.fromstring(page.content).xpath("//table")}

    admin = page_of("A1")
    [job] = admin["Exports et imports"]
    assert job[1:8] == ["export", "old-ent", "incomplete (1 item and 1 listing failed)", "2", "1", "2", "1"]
    [failures] = [rows for caption, rows in admin.items() if caption.startswith("Ce que la tâche")]
    assert failures == [["2001", "documents", "(toute la liste)", "listing refused: HTTP 403"],
                        ["1001", "documents", "c.odt", "HTTP 500 from the ENT"]]
    assert [r[1:] for r in admin["Journal des accès"]] == [["dpo:P1", "read", "1001", "documents", "a.odt (v1)"]]

    collectivite = page_of("C1")  # progress only: no one named
    assert list(collectivite) == ["Exports et imports"] and collectivite["Exports et imports"][0][4] == "2"
    dpo = page_of("P1")  # the access log only
    assert list(dpo) == ["Journal des accès"]
    b = world.sign_in("D1")
    assert b.get(f"{world.url}/vault", timeout=10).status_code == 403
    assert ("vault", "refused", None, None, "127.0.0.1") in audit_rows(world, "D1")
    assert ("vault", "ok", None, None, "127.0.0.1") in audit_rows(world, "C1")

"""The console in a real browser: Debian's chromium driven by selenium (chromedriver), signing in through the
SSO and the pysaml2 agents' IdP, browsing every page (usage's charts drawn), granting by hand as a resource
manager, refused outside its UAI; axe-core (tests/console/axe, pinned) on every page, no serious or critical
violation; a screenshot of each page in the test's folder.

`scripts/ensure-services.sh` (run by `make test`) installs chromium, chromium-driver and axe-core.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.console.conftest import S1

AXE = Path(__file__).parent / "axe" / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
SEVERE = ("serious", "critical")


@pytest.fixture(scope="module")
def browser():
    if not (CHROMIUM and CHROMEDRIVER and AXE.exists()):
        pytest.fail("chromium, chromedriver or axe-core is missing: run scripts/ensure-services.sh (make test does)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,900",
                "--lang=fr-FR", "--disable-gpu"):
        options.add_argument(arg)
    options.add_experimental_option("prefs", {"intl.accept_languages": "fr-FR,fr"})
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.set_page_load_timeout(30)
    driver.set_script_timeout(30)
    yield driver
    driver.quit()


class Pages:
    """What the test sees: pages waited for, checked with axe-core and photographed."""

    def __init__(self, driver, folder: Path):
        self.driver, self.folder = driver, folder
        self.axe = AXE.read_text(encoding="utf-8")
        self.shots: list[Path] = []

    def wait_for(self, predicate, what: str, timeout: float = 20):
        from selenium.webdriver.support.ui import WebDriverWait

        try:
            return WebDriverWait(self.driver, timeout).until(lambda d: predicate(d))
        except Exception as exc:
            raise AssertionError(f"waited for {what}; at {self.driver.current_url}: "
                                 f"{self.driver.page_source[:800]}") from exc

    def severe(self) -> list[tuple]:
        """The serious and critical axe-core violations of the page shown: (rule, impact, first elements)."""
        self.driver.execute_script(self.axe)
        violations = self.driver.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "axe.run(document, {resultTypes: ['violations']}).then(r => done(r.violations), e => done(String(e)));")
        assert isinstance(violations, list), violations
        return [(v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3]) for v in violations
                if v["impact"] in SEVERE]

    def check(self, name: str) -> None:
        """No serious or critical axe-core violation on the page shown; its screenshot saved."""
        severe = self.severe()
        assert severe == [], f"{name}: {severe}"
        path = self.folder / f"console-{name}.png"
        assert self.driver.save_screenshot(str(path))
        self.shots.append(path)

    def text(self) -> str:
        return self.driver.find_element("tag name", "body").text


def test_a_manager_and_an_administrator_browse_the_console_in_chromium(world, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    pages = Pages(browser, tmp_path)
    # the harness sees what it must: an unlabelled field and an image without text are critical
    browser.get("data:text/html,<html lang='fr'><title>t</title><main><input><img src='x.png'></main></html>")
    assert {rule for rule, *_ in pages.severe()} >= {"label", "image-alt"}

    browser.get(f"{world.url}/")
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "fr"
    pages.check("sign-in")

    # the head of S1 signs in: console -> SSO -> pysaml2 IdP (its auto-posting form) -> SSO -> console
    world.sso.idp.user = ("agent-D1", {"urn:oid:0.9.2342.19200300.100.1.3": ["d1@ac-test.fr"]})
    browser.find_element(By.LINK_TEXT, "Se connecter").click()
    pages.wait_for(lambda d: d.current_url == f"{world.url}/" and "Vos rôles" in d.page_source, "the home page")
    assert "Responsable d’affectation" in pages.text() and S1 in pages.text()
    pages.check("home")

    browser.find_element(By.LINK_TEXT, "Annuaire").click()
    browser.find_element(By.ID, "q").send_keys("nom1001")
    browser.find_element(By.CSS_SELECTOR, "form[role=search] button").click()
    pages.wait_for(lambda d: "Élodie Nom1001" in d.page_source, "the search results")
    assert browser.current_url == f"{world.url}/directory"  # POSTed: no name in the URL
    pages.check("directory")

    browser.find_element(By.LINK_TEXT, "Élodie Nom1001").click()
    pages.wait_for(lambda d: "Attribuer une ressource" in d.page_source, "the person's page")
    assert "1001" not in browser.current_url
    assert "rule:dico-pupils" in pages.text()
    pages.check("person")

    Select(browser.find_element(By.ID, "resource")).select_by_visible_text("Atlas")
    browser.find_element(By.XPATH, "//button[normalize-space()='Attribuer']").click()
    pages.wait_for(lambda d: "La ressource est attribuée." in d.page_source, "the grant's confirmation")
    assert "manual:D1" in pages.text()
    assert world.provisioning.grants("1001")[("1001", "ark:/49591/atlas")] == "manual:D1"
    pages.check("person-granted")

    browser.get(f"{world.url}/people/{world.ref('2001')}")  # a pupil of S2: not theirs
    assert "Accès refusé" in pages.text()
    pages.check("refused")

    # the administrator, in English
    browser.delete_all_cookies()  # the console's and the SSO's (one host): a new sign-in
    browser.get(f"{world.url}/language/en")
    world.sso.idp.user = ("agent-A1", {"urn:oid:0.9.2342.19200300.100.1.3": ["a1@ac-test.fr"]})
    browser.find_element(By.LINK_TEXT, "Sign in").click()
    pages.wait_for(lambda d: d.current_url == f"{world.url}/" and "Your roles" in d.page_source, "the home page")
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "en"
    browser.find_element(By.LINK_TEXT, "Health").click()
    pages.wait_for(lambda d: "relais.q.provisioning" in d.page_source, "the health page", timeout=30)
    pages.check("health")
    browser.find_element(By.LINK_TEXT, "Imports").click()
    assert "Rejected records" in pages.text() and "PersEducNat" in pages.text()
    pages.check("imports")
    browser.find_element(By.LINK_TEXT, "Resources").click()
    assert "Licences held" in pages.text() and "Atlas" in pages.text()
    pages.check("resources")
    browser.find_element(By.LINK_TEXT, "Rules").click()
    pages.check("rules")
    browser.find_element(By.ID, "names").click()
    browser.find_element(By.XPATH, "//button[normalize-space()='Preview']").click()
    pages.wait_for(lambda d: "Preview of the rule change" in d.page_source, "the rules' preview")
    assert "This change adds and removes nothing." in pages.text()  # the rules in force, unchanged
    pages.check("rules-preview")
    browser.find_element(By.LINK_TEXT, "SSO").click()
    assert "CAS services" in pages.text() and "Maths en ligne" in pages.text()
    pages.check("sso")
    browser.find_element(By.LINK_TEXT, "Vault").click()
    assert "Exports and imports" in pages.text() and "HTTP 500 from the ENT" in pages.text()
    pages.check("vault")
    browser.find_element(By.LINK_TEXT, "Usage").click()
    assert "Licences granted and used" in pages.text() and "Atlas" in pages.text()
    charts = browser.find_elements(By.CSS_SELECTOR, "img.chart")
    pages.wait_for(lambda d: all(d.execute_script("return arguments[0].complete && arguments[0].naturalWidth", c)
                                 for c in charts), "the usage charts drawn")
    assert len(charts) == 2 and all(c.size["width"] > 300 for c in charts)
    pages.check("usage")
    browser.find_element(By.LINK_TEXT, "Audit log").click()
    assert "refused" in pages.text() and "D1" in pages.text()
    pages.check("audit")

    assert len(pages.shots) == 15 and all(p.stat().st_size > 5000 for p in pages.shots)

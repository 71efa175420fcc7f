"""Every word the console shows is in the French and English catalogues (relais/locale), none hard-coded."""

from __future__ import annotations

from pathlib import Path

import pytest
from babel.messages.extract import extract_from_file

import services.console
from relais.i18n import missing, translator
from services.console.entrypoints.http import ROLE_LABELS

CONSOLE = Path(services.console.__file__).parent


def used_msgids() -> list[str]:
    """The msgids the templates and the HTTP side mark with `_`, and the role labels."""
    found = [m[1] for m in extract_from_file("python", str(CONSOLE / "entrypoints" / "http.py"))]
    for template in sorted((CONSOLE / "templates").glob("*.html")):
        found += [m[1] for m in extract_from_file("jinja2.ext:babel_extract", str(template))]
    return list(dict.fromkeys([*found, *ROLE_LABELS.values()]))


def test_the_extraction_sees_templates_and_code():
    msgids = used_msgids()
    assert "Grant a resource" in msgids  # person.html
    assert "Provisioning refused:" in msgids  # http.py
    assert "Data-protection officer" in msgids and len(msgids) > 80


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_every_msgid_is_translated(lang):
    assert missing(used_msgids(), lang) == []


def test_french_is_french():
    _ = translator("fr")
    assert _("Sign in") == "Se connecter" and _("Audit log") == "Journal d’audit"


def test_no_template_holds_a_bare_word_outside_the_catalogues():
    """Text between tags in a template is a `_()` call, a variable, or punctuation: nothing in one language only."""
    import re

    for template in sorted((CONSOLE / "templates").glob("*.html")):
        text = re.sub(r"{{.*?}}|{%.*?%}|<[^>]+>", " ", template.read_text(encoding="utf-8"), flags=re.S)
        words = [w for w in re.findall(r"[A-Za-zÀ-ÿ]{3,}", text) if w not in ("INE", "English", "Français")]
        assert words == [], f"{template.name}: {words}"

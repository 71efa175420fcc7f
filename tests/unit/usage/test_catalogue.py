"""Every word the usage outputs show people is in the catalogues, in French and in English, with the same placeholders.

The msgids are read from the outputs' sources as gettext tools read them (Babel's extractor, keywords `_` and
`N_`), so a new `_("...")` in a chart without its translations fails here, not in front of a reader.
"""

from __future__ import annotations

import string
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_file

from relais.i18n import missing, translator
from services.usage.outputs import files, labels
from services.usage.rules import rows

OUTPUTS = Path(files.__file__).resolve().parent
KEYWORDS = {"_": None, "N_": None}  # gettext's translate-here and mark-for-later, as Babel's extractor names them


def used_msgids() -> dict[str, str]:
    """msgid -> where it is used (file:line), for every `_("...")` and `N_("...")` in services/usage/outputs/."""
    found: dict[str, str] = {}
    for path in sorted(OUTPUTS.glob("*.py")):
        for line, msgid, _comments, _context in extract_from_file("python", str(path), keywords=KEYWORDS):
            assert isinstance(msgid, str), f"{path.name}:{line}: plural forms are not used by the outputs"
            found.setdefault(msgid, f"{path.name}:{line}")
    return found


def fields(text: str) -> set[str]:
    return {name for _literal, name, _spec, _conv in string.Formatter().parse(text) if name is not None}


def test_the_extraction_sees_the_outputs_words():
    msgids = used_msgids()
    assert "Licences granted, used and unused per resource, {period}" in msgids  # a chart's title (charts.py)
    assert "Licences used" in msgids  # a label (labels.py, through N_)


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_every_msgid_the_outputs_use_is_translated(lang):
    msgids = used_msgids()
    assert [f"{m!r} ({msgids[m]})" for m in missing(msgids, lang)] == []


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_each_translation_keeps_its_msgid_placeholders(lang):
    _ = translator(lang)
    wrong = {m: _(m) for m in used_msgids() if fields(_(m)) != fields(m)}
    assert wrong == {}


def test_the_french_differs_from_the_source_where_the_words_differ():
    """A French catalogue that merely copied the English would pass the tests above: the titles must be French."""
    _ = translator("fr")
    assert _("Licences granted, used and unused per resource, {period}").startswith("Licences attribuées")
    assert _("Weekly active users, {period}").startswith("Utilisateurs actifs par semaine")


def test_every_machine_value_of_a_report_has_a_label():
    assert set(labels.COLUMNS) == set(files.COLUMNS)
    assert set(labels.INDICATORS) == set(rows.INDICATORS)
    assert set(labels.GRAINS) == set(rows.GRAINS)
    assert set(labels.STATUSES) == set(rows.STATUSES)


def test_a_label_is_translated_and_an_unknown_value_shown_as_it_is():
    fr, en = translator("fr"), translator("en")
    assert labels.label(labels.PROFILES, "National_ELV", fr) == "Élèves"
    assert labels.label(labels.PROFILES, "National_ELV", en) == "Pupils"
    assert labels.label(labels.PROFILES, rows.ALL, fr) == "Tous"
    assert labels.label(labels.PROFILES, "-", fr) == "Inconnu"
    assert labels.label(labels.PROFILES, "National_XYZ", fr) == "National_XYZ"

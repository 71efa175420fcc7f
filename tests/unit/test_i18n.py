"""The kernel's message catalogues (relais/i18n.py): French by default, English on request, a missing message shown
as its source, an unknown language refused naming those there are."""

from __future__ import annotations

from pathlib import Path

import pytest

from relais import i18n
from relais.i18n import BrokenCatalogue, UnknownLanguage, languages, missing, translator


def test_french_is_the_default_and_english_is_available():
    assert translator().lang == "fr"
    assert translator()("Licences used") == "Licences utilisées"
    assert translator("en")("Licences used") == "Licences used"
    assert set(languages()) >= {"fr", "en"}


def test_a_tag_with_a_region_or_in_capitals_is_read_as_its_language():
    assert translator("fr_FR").lang == "fr"
    assert translator("en-GB").lang == "en"
    assert translator("FR").lang == "fr"


def test_an_unknown_language_is_refused_naming_the_languages_available():
    with pytest.raises(UnknownLanguage) as refused:
        translator("de")
    assert "'de'" in str(refused.value)
    assert "available languages are en, fr" in str(refused.value)


def test_a_message_no_catalogue_holds_is_shown_as_its_source_string():
    assert translator("fr")("A sentence nobody translated") == "A sentence nobody translated"
    assert missing(["Licences used", "A sentence nobody translated"], "fr") == ["A sentence nobody translated"]


def write_po(folder: Path, lang: str, body: str) -> None:
    where = folder / lang / "LC_MESSAGES"
    where.mkdir(parents=True)
    (where / "test.po").write_text(
        'msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=utf-8\\n"\n"Language: ' + lang + '\\n"\n\n' + body,
        encoding="utf-8")


def test_an_empty_or_fuzzy_translation_counts_as_missing(tmp_path):
    write_po(tmp_path, "fr", 'msgid "Done"\nmsgstr "Fait"\n\nmsgid "Empty"\nmsgstr ""\n\n'
                             '#, fuzzy\nmsgid "Unsure"\nmsgstr "Peut-être"\n')
    _ = translator("fr", domain="test", locale_dir=tmp_path)
    assert [_("Done"), _("Empty"), _("Unsure")] == ["Fait", "Empty", "Unsure"]
    assert missing(["Done", "Empty", "Unsure"], "fr", domain="test", locale_dir=tmp_path) == ["Empty", "Unsure"]
    with pytest.raises(UnknownLanguage, match="available languages are fr"):
        translator("en", domain="test", locale_dir=tmp_path)


def test_a_broken_catalogue_is_refused_rather_than_read_halfway(tmp_path):
    write_po(tmp_path, "fr", 'msgid "Done"\nmsgstr "Fait"\n\nmsgid "Lost"\nmsgstr "Perdu"\ngarbage\n')
    with pytest.raises(BrokenCatalogue, match=r"fr/LC_MESSAGES/test\.po: .*misformatted.* on 10"):
        translator("fr", domain="test", locale_dir=tmp_path)


def test_the_catalogues_ship_in_the_package_data():
    """pyproject.toml's package data takes the .po files, so an installed Relais (the image) has its messages."""
    import fnmatch
    import tomllib

    root = Path(__file__).resolve().parents[2]
    patterns = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["*"]
    catalogues = list(i18n.LOCALE_DIR.glob("*/LC_MESSAGES/*.po"))
    assert catalogues
    for po in catalogues:
        assert any(fnmatch.fnmatch(po.name, p) for p in patterns), f"{po} is not in the package data ({patterns})"

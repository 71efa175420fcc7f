"""Message catalogues: the words Relais shows people, in French by default, in English on request.

Catalogues are gettext `.po` files, `relais/locale/<lang>/LC_MESSAGES/<domain>.po`, read as they are
by Babel (no compile step, no `.mo` to keep in step) and kept once per process. Source strings
(msgids) are English, as gettext tools expect; each language, English included, has its own
catalogue, so the English wording can be edited without touching the code.

    _ = translator("fr")          # or translator() : French is the default
    _("Licences used")            # -> "Licences utilisées"

A msgid a catalogue lacks (or holds empty or fuzzy) is answered by the msgid itself: the untranslated
text shows where it is missing instead of vanishing, and `missing()` lists them for tests. An unknown
language is refused (`UnknownLanguage`, naming the languages available), a .po file that does not
parse too (`BrokenCatalogue`, naming it and where), never read halfway; a tag with a region
(`fr_FR`, `en-GB`) is read as its language. Placeholders are `str.format` fields (`{period}`), the
same names in the msgid and every msgstr.

Adding a language: copy `locale/en/LC_MESSAGES/relais.po` to `locale/<lang>/LC_MESSAGES/`, set its
`Language:` header and translate each msgstr; `languages()` finds it. A new msgid goes into every
catalogue (the usage outputs' test lists any the code marks that a catalogue lacks).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from babel.messages.pofile import PoFileError, read_po

LOCALE_DIR = Path(__file__).resolve().parent / "locale"
DOMAIN = "relais"
DEFAULT_LANGUAGE = "fr"


class UnknownLanguage(ValueError):
    """A language no catalogue of the domain is written in."""


class BrokenCatalogue(ValueError):
    """A .po file that does not parse; the message names the file and the line."""


def languages(domain: str = DOMAIN, locale_dir: Path = LOCALE_DIR) -> tuple[str, ...]:
    """The languages a domain's catalogues exist in, sorted."""
    return tuple(sorted(p.parent.parent.name for p in locale_dir.glob(f"*/LC_MESSAGES/{domain}.po")))


def language(tag: str, domain: str = DOMAIN, locale_dir: Path = LOCALE_DIR) -> str:
    """The catalogue language for a tag ("fr", "FR", "fr_FR", "en-GB"), or UnknownLanguage naming those available."""
    available = languages(domain, locale_dir)
    wanted = tag.strip().replace("-", "_").lower()
    for candidate in (wanted, wanted.split("_")[0]):
        if candidate in available:
            return candidate
    raise UnknownLanguage(
        f"no {domain!r} messages in language {tag!r}: available languages are {', '.join(available) or 'none'}"
        f" (catalogues in {locale_dir})")


@dataclass(frozen=True)
class Translator:
    """A gettext-like callable for one language: `_(msgid)` is the msgid's translation, or the msgid itself."""

    lang: str
    messages: dict[str, str] = field(repr=False)

    def __call__(self, msgid: str) -> str:
        return self.messages.get(msgid) or msgid

    gettext = __call__


def translator(lang: str = DEFAULT_LANGUAGE, domain: str = DOMAIN, locale_dir: Path = LOCALE_DIR) -> Translator:
    """The translator of a language (French by default); UnknownLanguage if no catalogue is written in it."""
    code = language(lang, domain, locale_dir)
    return Translator(code, _catalogue(locale_dir / code / "LC_MESSAGES" / f"{domain}.po"))


def missing(msgids: Iterable[str], lang: str, domain: str = DOMAIN, locale_dir: Path = LOCALE_DIR) -> list[str]:
    """The msgids a language's catalogue does not translate (absent, empty or fuzzy), in the order given."""
    messages = translator(lang, domain, locale_dir).messages
    return [msgid for msgid in msgids if not messages.get(msgid)]


@functools.cache
def _catalogue(path: Path) -> dict[str, str]:
    """msgid -> msgstr of a .po file: its translated, non-fuzzy singular messages (read once per process)."""
    with path.open("rb") as f:
        try:
            catalog = read_po(f, abort_invalid=True)
        except PoFileError as e:
            raise BrokenCatalogue(f"{path}: {e} (lines count from 0)") from None
    return {str(m.id): str(m.string) for m in catalog
            if m.id and isinstance(m.id, str) and isinstance(m.string, str) and m.string and not m.fuzzy}

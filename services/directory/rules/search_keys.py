"""How names and e-mails are compared in lookups: ignoring case, accents, hyphens and apostrophes."""

from __future__ import annotations

import unicodedata


def search_key(text: str | None) -> str:
    """Case- and accent-insensitive form of a name or e-mail, for lookups."""
    if not text:
        return ""
    if text.isascii():
        return " ".join(text.casefold().replace("-", " ").replace("'", " ").split())
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(stripped.casefold().replace("-", " ").replace("'", " ").split())

"""First-degree attribute names: what an aaf1d export calls some attributes.

First-degree (primary school) exports write `ENTPersonNom`, `ENTPersonPrenom`,
`ENTPersonMail`, `ENTPersonClasses` and `ENTPersonGroupes` where second-degree
ones write `sn`, `givenName`, `mail`, `ENTEleveClasses` and `ENTEleveGroupes`.
A record is read with the second-degree names; when it has both, the
second-degree value wins.
"""

from __future__ import annotations

ALIASES_1D = {
    "ENTPersonNom": "sn",
    "ENTPersonPrenom": "givenName",
    "ENTPersonMail": "mail",
    "ENTPersonClasses": "ENTEleveClasses",
    "ENTPersonGroupes": "ENTEleveGroupes",
}


def normalize_1d(attrs: dict[str, list[str]]) -> dict[str, list[str]]:
    """Map first-degree attribute names onto second-degree ones (second-degree wins)."""
    if not any(name in attrs for name in ALIASES_1D):
        return attrs
    out = dict(attrs)
    for old, new in ALIASES_1D.items():
        if old in attrs and not attrs.get(new):
            out[new] = attrs[old]
    return out

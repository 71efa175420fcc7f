"""The six AAF families, which of them are persons, and which family a category names."""

from __future__ import annotations

# In the order a run imports them: structures, MEFs and subjects before the persons who refer to them
# (`import_order.py`).
FAMILIES = ("EtabEducNat", "MefEducNat", "MatiereEducNat", "PersEducNat", "Eleve", "PersRelEleve")
PERSON_FAMILIES = frozenset({"Eleve", "PersRelEleve", "PersEducNat"})

# A record's category (operationalAttributes/attr value) or a file name's family -> the family.
# The samples spell subjects `MatEducNat`.
FAMILY_BY_CATEGORY = {
    "Eleve": "Eleve",
    "PersRelEleve": "PersRelEleve",
    "PersEducNat": "PersEducNat",
    "EtabEducNat": "EtabEducNat",
    "MefEducNat": "MefEducNat",
    "MatEducNat": "MatiereEducNat",
    "MatiereEducNat": "MatiereEducNat",
}

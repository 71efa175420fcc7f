"""What the usage statistics learn of a session: the person's profile, structure (UAI) and level (pure).

They are read once, from the directory record the login already matched, kept on the
session, and copied into `sso.login.succeeded`, `sso.cas.ticket.validated` and
`sso.saml.response.sent`, so the usage service can count by structure, profile and level
without asking the directory again. Nothing else of the person goes with them: no name,
e-mail or national identifier.

- `profile`: the first of the record's national profiles (`National_ELV`, `National_TUT`...), as
  the directory lists them;
- `structure`: the UAI the login was made for: the one of the EduConnect vector that found the
  account when there is one (no directory call), else the UAI of the record's attachment
  structure (`uai_of`, which the caller caches);
- `level`: the pupil's MEF code, when the record has one.
Each is None when the record does not say.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

MAX_LENGTH = 64  # what the session's columns hold; a longer value is not a profile, UAI or MEF code


@dataclass(frozen=True)
class UsageFacts:
    profile: str | None = None
    structure: str | None = None  # UAI
    level: str | None = None  # MEF code

    def payload(self) -> dict[str, str | None]:
        """The events' `profile`, `structure`, `level` fields."""
        return {"profile": self.profile, "structure": self.structure, "level": self.level}

    def to_json(self) -> dict[str, str | None]:
        return self.payload()

    @classmethod
    def from_json(cls, value: Any) -> UsageFacts:
        """Back from `to_json` (a pending account choice); anything else, e.g. a choice saved by an older
        version, gives empty facts."""
        if not isinstance(value, Mapping):
            return cls()
        return cls(_text(value.get("profile")), _text(value.get("structure")), _text(value.get("level")))


NO_FACTS = UsageFacts()


def usage_facts(person: Mapping[str, Any] | None, uai_of: Callable[[str], str | None], *,
                via_uai: str | None = None) -> UsageFacts:
    """The usage facts of a canonical directory Person; `via_uai`: the UAI the national identity named the
    account through (an EduConnect vector), preferred to a lookup of the attachment's."""
    if person is None:
        return NO_FACTS
    profiles = person.get("profiles") or ()
    profile = _text(profiles[0]) if profiles else None
    structure = _text(via_uai)
    if structure is None and person.get("structure"):
        structure = _text(uai_of(person["structure"]))
    return UsageFacts(profile, structure, _text(person.get("mef")))


def _text(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    value = value.strip()
    return value if value and len(value) <= MAX_LENGTH else None

"""What the usage statistics learn of a session (rules/usage_facts.py), and the matching's records it reads."""

from __future__ import annotations

from services.sso.rules.account_matching import match_identity
from services.sso.rules.usage_facts import NO_FACTS, UsageFacts, usage_facts
from tests.unit.sso.directory_fake import academy

PUPIL = {"jointure": "1001", "category": "Eleve", "profiles": ["National_ELV"], "structure": "S1",
         "mef": "10010012110", "last_name": "Nom", "email": "x@example.org"}


def test_a_pupil_s_profile_attachment_uai_and_mef():
    asked: list[str] = []

    def uai_of(structure: str) -> str | None:
        asked.append(structure)
        return {"S1": "0750001A"}.get(structure)

    assert usage_facts(PUPIL, uai_of) == UsageFacts("National_ELV", "0750001A", "10010012110")
    assert asked == ["S1"]
    # the UAI a vector named is taken as it is: no lookup
    assert usage_facts(PUPIL, uai_of, via_uai="0750002B").structure == "0750002B" and asked == ["S1"]
    assert usage_facts(PUPIL, uai_of).payload() == {"profile": "National_ELV", "structure": "0750001A",
                                                    "level": "10010012110"}


def test_what_the_record_does_not_say_is_none():
    def nowhere(structure: str) -> str | None:
        return None

    assert usage_facts(None, nowhere) == NO_FACTS
    parent = {"jointure": "R1", "category": "PersRelEleve", "profiles": [], "structure": None, "mef": None}
    assert usage_facts(parent, nowhere) == UsageFacts(None, None, None)
    assert usage_facts({**PUPIL, "profiles": ["National_ENS", "National_DIR"], "mef": ""}, nowhere) == \
        UsageFacts("National_ENS", None, None)  # the first profile; a structure without a UAI; an empty MEF
    assert usage_facts({**PUPIL, "mef": "x" * 65}, nowhere).level is None  # not a MEF code: not sent


def test_facts_kept_with_a_pending_choice_come_back_and_older_choices_have_none():
    facts = UsageFacts("National_TUT", "0750001A", None)
    assert UsageFacts.from_json(facts.to_json()) == facts
    assert UsageFacts.from_json(None) == NO_FACTS and UsageFacts.from_json(["x"]) == NO_FACTS
    assert UsageFacts.from_json({"profile": 3, "structure": "0750001A"}) == UsageFacts(None, "0750001A", None)


def test_the_matching_hands_over_the_records_it_read_and_the_vector_s_uai():
    directory = academy()
    m = match_identity("educonnect", {"FrEduCtPersonAffiliation": ["eleve2d"],
                                      "FrEduCtRefId": ["{AAF}01|X|1001"]}, directory)
    assert m.unique is not None and m.unique.record is not None and m.unique.record["jointure"] == "1001"
    assert m.unique.via_uai is None
    m = match_identity("educonnect", {"FrEduCtPersonAffiliation": ["eleve2d"],
                                      "FrEduVecteur": ["4|||R1001|0750001A"]}, directory)
    assert m.unique is not None and m.unique.via_uai == "0750001A" and m.unique.record["jointure"] == "1001"

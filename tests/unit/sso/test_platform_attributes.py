"""What the SAML IdP releases to a resource platform, under which name (rules/platform_attributes.py)."""

from __future__ import annotations

from services.sso.rules.platform_attributes import (
    ENT_ATTRIBUTES,
    GAR_ATTRIBUTES,
    NAME_FORMAT_BASIC,
    NAME_FORMAT_URI,
    RELEASABLE,
    AttributeRelease,
    gar_attributes,
    released,
)

UAIS = {"S1": "0750001A", "S2": "0750002B"}


def test_gar_attributes_name_schools_by_uai_in_the_gar_value_spaces():
    pupil = {"ENTPersonProfils": ["National_ELV"], "ENTPersonStructRattachUAI": ["0750001A"],
             "ENTPersonEtablissementsUAI": ["0750001A", "0750002B"], "ENTEleveMEF": ["10010012110"],
             "ENTEleveClasses": ["S1$6A"], "ENTEleveGroupes": ["S1$LATIN", "S9$ORPHAN"]}
    assert gar_attributes(pupil, UAIS.get) == {
        "GARPersonProfils": ["National_elv"], "GARPersonStructRattach": ["0750001A"],
        "GARPersonEtab": ["0750001A", "0750002B"], "GARPersonMEF": ["0750001A$10010012110"],
        "GARPersonGroupe": ["0750001A$6A", "0750001A$LATIN"]}  # S9 has no known UAI: not named to a platform


def test_teachers_classes_count_and_relatives_have_no_gar_profile():
    teacher = {"ENTPersonProfils": ["National_ENS", "National_DOC"], "ENTAuxEnsClasses": ["S2$2B"],
               "ENTAuxEnsGroupes": ["S2$G1"]}
    assert gar_attributes(teacher, UAIS.get) == {"GARPersonProfils": ["National_ens", "National_doc"],
                                                 "GARPersonGroupe": ["0750002B$2B", "0750002B$G1"]}
    relative = {"ENTPersonProfils": ["National_TUT"], "ENTPersonStructRattachUAI": []}
    assert gar_attributes(relative, UAIS.get) == {}
    # no attachment: no MEF either (a MEF is named with the school's UAI)
    assert "GARPersonMEF" not in gar_attributes({"ENTEleveMEF": ["1001"]}, UAIS.get)


def test_only_the_listed_attributes_with_values_are_released_under_their_names():
    values = {"sn": ["Martin"], "GARPersonProfils": ["National_elv"], "mail": []}
    releases = (AttributeRelease("GARPersonProfils", "GARPersonProfils"), AttributeRelease("sn", "urn:oid:2.5.4.4"),
                AttributeRelease("mail", "mail"))
    assert released(values, releases) == [(releases[0], ["National_elv"]), (releases[1], ["Martin"])]
    assert released(values, ()) == []  # nothing beyond the NameID unless the platform's list says so
    renamed = releases[1]
    assert (renamed.name_format, renamed.friendly_name) == (NAME_FORMAT_URI, "sn")
    assert (releases[0].name_format, releases[0].friendly_name) == (NAME_FORMAT_BASIC, None)


def test_what_can_be_released():
    assert RELEASABLE == ENT_ATTRIBUTES + GAR_ATTRIBUTES and "GARPersonEtab" in RELEASABLE and "uid" in RELEASABLE

"""Names and e-mails compared ignoring case, accents, hyphens and apostrophes."""

from __future__ import annotations

import pytest

from services.directory.rules.search_keys import search_key


@pytest.mark.parametrize(("a", "b"), [
    ("Hélène", "HELENE"), ("Dupré", "dupre"), ("Jean-Pierre", "jean pierre"), ("D'Arc", "d arc"),
    ("Zoe.Durand@AC-TEST.fr", "zoe.durand@ac test.fr"), ("  Maëlla  ", "maella"), ("Œdipe", "œdipe"),
])
def test_equal_for_lookups(a, b):
    assert search_key(a) == search_key(b)


def test_different_names_stay_different():
    assert search_key("Durand") != search_key("Durant")


def test_nothing_is_the_empty_key():
    assert search_key(None) == "" and search_key("") == ""

"""Unchanged means unchanged: what the record hashes see, and what MODEL_VERSION does."""

from __future__ import annotations

from services.directory.rules import fingerprints
from services.directory.rules.fingerprints import attributes_json, fingerprint, kept_attributes, raw_fingerprint


def test_equal_attributes_in_any_order_have_one_fingerprint():
    a = attributes_json({"sn": ["Durand"], "givenName": ["Zoé"]})
    b = attributes_json({"givenName": ["Zoé"], "sn": ["Durand"]})
    assert fingerprint("Eleve", "1", a) == fingerprint("Eleve", "1", b)


def test_a_changed_value_family_or_key_changes_the_fingerprint():
    attrs = attributes_json({"sn": ["Durand"]})
    base = fingerprint("Eleve", "1", attrs)
    assert base != fingerprint("Eleve", "1", attributes_json({"sn": ["Dupont"]}))
    assert base != fingerprint("PersEducNat", "1", attrs)
    assert base != fingerprint("Eleve", "2", attrs)
    assert base != fingerprint("Eleve", "1", attributes_json({"sn": ["Durand", "Martin"]}))


def test_empty_attributes_do_not_count():
    assert kept_attributes({"sn": ["Durand"], "mail": [], "title": []}) == {"sn": ["Durand"]}


def test_raw_fingerprints_compare_bytes():
    assert raw_fingerprint(b"<addRequest>a</addRequest>") == raw_fingerprint(b"<addRequest>a</addRequest>")
    assert raw_fingerprint(b"<addRequest>a</addRequest>") != raw_fingerprint(b"<addRequest>a </addRequest>")
    assert len(raw_fingerprint(b"x")) == 32


def test_a_new_model_version_changes_every_fingerprint(monkeypatch):
    attrs = attributes_json({"sn": ["Durand"]})
    before = fingerprint("Eleve", "1", attrs), raw_fingerprint(b"<addRequest/>")
    monkeypatch.setattr(fingerprints, "MODEL_VERSION", b"directory-model-next")
    after = fingerprint("Eleve", "1", attrs), raw_fingerprint(b"<addRequest/>")
    assert before[0] != after[0] and before[1] != after[1]

"""The OpenID Connect provider's pure decisions (services/sso/rules/oidc.py)."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from services.sso.rules.oidc import (
    challenge_problem,
    default_sector,
    pairwise_subject,
    redirect_uri_problem,
    redirect_uri_registered,
    released_claims,
    requested_scopes,
    session_id_claim,
    verifier_matches,
)

SECRET = b"k" * 40
REGISTERED = ("https://app.example.org/cb", "https://app.example.org/cb?tenant=1")


@pytest.mark.parametrize("uri", ["https://app.example.org/cb", "https://app.example.org/cb?tenant=1"])
def test_registered_redirect_uris_match(uri):
    assert redirect_uri_registered(uri, REGISTERED)


@pytest.mark.parametrize("uri", [None, "", "https://app.example.org/cb/", "https://app.example.org/cb/x",
                                 "https://app.example.org:8443/cb", "https://u@app.example.org/cb",
                                 "https://app.example.org/cb#f", "https://APP.example.org/cb",
                                 "https://app.example.org/cb?tenant=2", "https://app.example.org/CB",
                                 "https://app.example.org/cb?", "http://app.example.org/cb"])
def test_any_other_uri_does_not_match(uri):
    assert not redirect_uri_registered(uri, REGISTERED)


@pytest.mark.parametrize(("uri", "problem"), [
    ("https://app.example.org/cb", None), ("http://127.0.0.1:8080/cb", None),
    ("http://app.example.org/cb", "loopback"), ("https://app.example.org/cb#x", "fragment"),
    ("https://u:p@app.example.org/cb", "user info"), ("javascript:alert(1)", "absolute"),
    ("https://app.example.org/c b", "spaces"), ("https://app.example.org:99999/", "not a URL")])
def test_redirect_uri_problems(uri, problem):
    found = redirect_uri_problem(uri)
    assert (found is None) if problem is None else (problem in found)


def test_pkce_s256_and_plain():
    verifier = "v" * 43
    s256 = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    assert verifier_matches(verifier, s256, "S256")
    assert not verifier_matches("w" * 43, s256, "S256")
    assert not verifier_matches(None, s256, "S256")
    assert not verifier_matches("short", "short", "plain")  # under 43 characters
    assert verifier_matches(verifier, verifier, "plain")


def test_pkce_requirements():
    assert "required" in challenge_problem(None, None, public=True)
    assert challenge_problem(None, None, public=False) is None
    assert "plain" in challenge_problem("c" * 43, "plain", public=True)
    assert "plain" in challenge_problem("c" * 43, None, public=True)  # plain is the default method
    assert challenge_problem("c" * 43, "plain", public=False) is None
    assert "not supported" in challenge_problem("c" * 43, "S512", public=False)
    assert "43 to 128" in challenge_problem("c" * 20, "S256", public=True)
    assert "without" in challenge_problem(None, "S256", public=False)


def test_scopes():
    assert requested_scopes("openid profile openid", ("openid", "profile")) == (("openid", "profile"), None)
    assert "openid" in requested_scopes("profile", ("openid", "profile"))[1]
    assert "email" in requested_scopes("openid email", ("openid",))[1]


def test_pairwise_subject_is_the_documented_formula_and_unlinkable():
    mac = hmac.new(SECRET, b"relais:oidc-sub:v1\0moodle.example.org\0" + b"2605692", hashlib.sha256).digest()
    expected = base64.b32encode(mac).decode().rstrip("=").lower()
    assert pairwise_subject(SECRET, "moodle.example.org", "2605692") == expected
    assert len(expected) == 52
    assert pairwise_subject(SECRET, "nextcloud.example.org", "2605692") != expected
    assert pairwise_subject(b"o" * 40, "moodle.example.org", "2605692") != expected
    with pytest.raises(ValueError):
        pairwise_subject(SECRET, "a\0b", "1")
    assert session_id_claim(SECRET, "ref", "a") != session_id_claim(SECRET, "ref", "b")


def test_default_sector():
    assert default_sector(["https://a.example.org/cb", "https://A.example.org/other"]) == "a.example.org"
    assert default_sector(["https://a.example.org/cb", "https://b.example.org/cb"]) is None


def test_claims_follow_the_policy_and_the_scopes():
    attributes = {"sn": ["Martin"], "givenName": ["Léa"], "mail": ["lea@example.org"],
                  "ENTPersonDateNaissance": ["05/03/2012"], "ENTPersonProfils": ["National_ELV"]}
    policy = ("family_name", "given_name", "email", "birthdate", "ENTPersonProfils")
    assert released_claims(attributes, policy, ("openid",)) == {"ENTPersonProfils": ["National_ELV"]}
    assert released_claims(attributes, policy, ("openid", "profile")) == {
        "family_name": "Martin", "given_name": "Léa", "birthdate": "2012-03-05", "ENTPersonProfils": ["National_ELV"]}
    assert released_claims(attributes, ("email",), ("openid", "email", "profile")) == {"email": "lea@example.org"}
    assert released_claims(attributes, (), ("openid", "profile", "email")) == {}


def test_every_message_of_the_oidc_pages_is_in_both_catalogues():
    import re
    from pathlib import Path

    from relais.i18n import missing

    source = (Path(__file__).parents[3] / "services" / "sso" / "oidc" / "flows.py").read_text()
    msgids = [re.sub(r'"\s+"', "", m) for m in re.findall(r'_\(((?:"[^"]*"\s*)+)\)', source)]
    msgids = [m.strip('"') for m in msgids]
    assert len(msgids) >= 10
    assert missing(msgids, "fr") == [] and missing(msgids, "en") == []

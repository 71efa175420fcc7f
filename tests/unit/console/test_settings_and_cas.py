"""The console's settings, and reading the SSO's CAS 3 answers (services/console/settings.py, adapters/cas.py)."""

from __future__ import annotations

import pytest

from services.console.adapters.cas import TicketRefused, read_answer
from services.console.rules.roles import RolePolicy
from services.console.settings import ConsoleConfigError, ConsoleSettings

SECRET = {"RELAIS_CONSOLE_SECRET": "x" * 32}


def test_defaults_and_lists():
    s = ConsoleSettings.from_env({**SECRET, "RELAIS_CONSOLE_ADMINS": " A1, A2 ,", "RELAIS_CONSOLE_URL":
                                  "https://console.example.org/"})
    assert s.service_url == "https://console.example.org/callback/"
    assert s.cas_url == "http://127.0.0.1:8430/cas" and s.cas_origin == "http://127.0.0.1:8430"
    assert s.policy == RolePolicy(administrators=frozenset({"A1", "A2"}))
    assert s.cookie_secure and s.idle_s == 1800 and s.max_s == 8 * 3600
    assert s.cas_validate_url == s.cas_url
    inside = ConsoleSettings.from_env({**SECRET, "RELAIS_CONSOLE_CAS_VALIDATE_URL": "http://sso:8430/cas"})
    assert inside.cas_validate_url == "http://sso:8430/cas" and inside.cas_url == "http://127.0.0.1:8430/cas"


@pytest.mark.parametrize("env, named", [
    ({}, "RELAIS_CONSOLE_SECRET"),
    ({**SECRET, "RELAIS_CONSOLE_URL": "console.example.org"}, "RELAIS_CONSOLE_URL"),
    ({**SECRET, "RELAIS_CONSOLE_CAS_URL": "https://sso/cas?x=1"}, "RELAIS_CONSOLE_CAS_URL"),
    ({**SECRET, "RELAIS_CONSOLE_SESSION_MINUTES": "0"}, "RELAIS_CONSOLE_SESSION_MINUTES"),
    ({**SECRET, "RELAIS_CONSOLE_COOKIE_SECURE": "maybe"}, "RELAIS_CONSOLE_COOKIE_SECURE"),
])
def test_a_bad_setting_is_refused_by_name(env, named):
    with pytest.raises(ConsoleConfigError, match=named):
        ConsoleSettings.from_env(env)


NS = 'xmlns:cas="http://www.yale.edu/tp/cas"'


def test_a_success_gives_the_user_and_every_attribute_value():
    answer = read_answer(f"""<cas:serviceResponse {NS}><cas:authenticationSuccess><cas:user>D1</cas:user>
        <cas:attributes><cas:ENTPersonFonctions>S1$DIR$DIRECTION</cas:ENTPersonFonctions>
        <cas:ENTPersonFonctions>S2$DIR$DIRECTION</cas:ENTPersonFonctions><cas:displayName>Claire</cas:displayName>
        </cas:attributes></cas:authenticationSuccess></cas:serviceResponse>""".encode())
    assert answer.user == "D1"
    assert answer.attributes == {"ENTPersonFonctions": ["S1$DIR$DIRECTION", "S2$DIR$DIRECTION"],
                                 "displayName": ["Claire"]}


@pytest.mark.parametrize("body, says", [
    (f'<cas:serviceResponse {NS}><cas:authenticationFailure code="INVALID_TICKET">Ticket ST-1 not recognized'
     "</cas:authenticationFailure></cas:serviceResponse>", "INVALID_TICKET: Ticket ST-1"),
    (f"<cas:serviceResponse {NS}><cas:authenticationSuccess/></cas:serviceResponse>", "neither"),
    ('<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>', "DTD"),
    ("<cas:serviceResponse", "not well-formed"),
])
def test_a_failure_or_a_bad_answer_is_refused_saying_why(body, says):
    with pytest.raises(TicketRefused, match=says):
        read_answer(body.encode())


def test_a_back_channel_logout_request_names_its_ticket_and_anything_else_names_none():
    from services.console.adapters.cas import logout_ticket

    request = ('<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" '
               'xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="LR-1" Version="2.0" '
               'IssueInstant="2026-12-07T10:00:00Z"><saml:NameID>@NOT_USED@</saml:NameID>'
               "<samlp:SessionIndex>ST-abc</samlp:SessionIndex></samlp:LogoutRequest>")
    assert logout_ticket(request.encode()) == "ST-abc"
    assert logout_ticket(request.replace("ST-abc", " ").encode()) is None
    assert logout_ticket(b"<x/>") is None and logout_ticket(b"") is None
    assert logout_ticket(b'<!DOCTYPE x [<!ENTITY e "ST-1">]><x>&e;</x>') is None

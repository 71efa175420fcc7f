"""SCIM filters in SQL: each one answers what scim2-models' own matcher finds on the same resources.

The OneRoster tests' world (real importer, provisioning consumer, token endpoint),
on SQLite and PostgreSQL: directory accounts (maths-app may receive names and
emails, quiz-app the id alone) and each app's own users, posted with names,
accented ones included, emails of several types, externalId, active. For every
filter, the list the API answers (filtered in SQL) is compared with the
complete unfiltered list filtered in Python by `ScimFilter[User].match`.
"""

from __future__ import annotations

import pytest
from scim2_models import Group, ScimFilter, User

from tests.provisioning.test_oneroster import token, world  # noqa: F401  (world: a fixture)

CT = "application/scim+json"
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"

LOCAL_USERS = [
    {"userName": "Bob", "name": {"givenName": "Bob", "familyName": "Leroy"}, "externalId": "EXT-1",
     "emails": [{"value": "bob@x.fr", "type": "work", "primary": True}, {"value": "bob@home.fr", "type": "home"}]},
    {"userName": "hélène.dupré", "name": {"givenName": "Hélène", "familyName": "DUPRÉ"}, "active": False,
     "title": "Professeure", "emails": [{"value": "Helene@Ac-Test.fr", "type": "other"}]},
    {"userName": "alice", "displayName": "Alice A.", "active": True, "nickName": "al",
     "emails": [{"value": "alice@x.fr", "type": "work"}]},
    {"userName": "zoé", "name": {"formatted": "Zoé Z"}, "title": "100% sûre_ (a\\b)"},
    # letters that Python's lower() turns into ASCII ones: the KELVIN SIGN gives k, the dotted capital I gives i
    {"userName": "\u212aarim", "name": {"familyName": "\u0130nce", "givenName": "\u212aelvin"}},
]

FILTERS = [
    'userName eq "bob"', 'userName eq "T1"', 'userName eq "t1"', 'USERNAME sw "A"', 'userName ew "É"',
    'urn:ietf:params:scim:schemas:core:2.0:User:userName eq "alice"', 'userName gt "m"', 'userName le "1"',
    'id eq "T1"', 'id eq "t1"', 'externalId eq "EXT-1"', 'externalId eq "ext-1"', 'externalId pr',
    'name.familyName eq "martin"', 'name.familyName co "UR"', 'name.givenName sw "hé"', 'name.givenName sw "h"',
    'name.familyName ew "é"', 'name.familyName pr', 'name pr', 'not (name.familyName pr)', 'name.formatted co "zo"',
    'name.familyName ne "martin"', 'name.givenName co ""',
    'title pr', 'title co "100%"', 'title co "_ (a\\\\b"', 'title sw "prof"', 'displayName co "a."', 'nickName eq "AL"',
    'emails pr', 'emails co "ac-test"', 'emails.value sw "anne"', 'emails[type eq "work"]',
    'emails[type eq "work" and value co "x.fr"]', 'emails[primary eq true]', 'emails[not (type eq "work")]',
    'emails.type eq "home"', 'emails.value ne "anne.martin@ac-test.fr"', 'emails ew ".FR"', 'emails.type pr',
    'active eq false', 'active eq true and userName sw "a"', 'not (active eq true)', 'active pr',
    'userName sw "A" or name.givenName eq "paul"', '(userName co "1" or userName co "2") and not (userName eq "2")',
    'not (emails co "x.fr" or name.familyName sw "d")',
    'userName sw "ka"', 'userName eq "karim"', 'name.familyName sw "i"', 'name.familyName co "nce"',
    'name.givenName eq "kelvin"',
]


def _client(w, app_id):
    headers = {"Authorization": f"Bearer {token(w, app_id)}"}

    def call(method, path, body=None, **kw):
        return w.client.open("/scim/v2" + path, method=method, headers=headers, content_type=CT, json=body, **kw)
    return call


def _ids(body):
    return [r["id"] for r in body["Resources"]]


@pytest.mark.parametrize("app_id", ["maths-app", "quiz-app"])
def test_filters_in_sql_answer_what_the_library_matches(world, app_id):  # noqa: F811
    call = _client(world, app_id)
    for user in LOCAL_USERS:
        resp = call("POST", "/Users", {"schemas": [USER], **user})
        assert resp.status_code == 201, resp.get_data(as_text=True)
    everyone = call("GET", "/Users").get_json()
    assert everyone["totalResults"] == len(everyone["Resources"]) > len(LOCAL_USERS)
    models = [(r["id"], User.model_validate(r)) for r in everyone["Resources"]]
    matched_something = 0
    for text in FILTERS:
        expected = [rid for rid, model in models if ScimFilter[User](text).match(model)]
        resp = call("GET", "/Users", query_string={"filter": text})
        assert resp.status_code == 200, (text, resp.get_data(as_text=True))
        body = resp.get_json()
        assert (_ids(body), body["totalResults"]) == (expected, len(expected)), text
        matched_something += bool(expected)
    assert matched_something > len(FILTERS) // 2  # the filters are not all vacuous
    # what an app may not receive cannot be filtered on either: quiz-app's accounts have no name
    names = call("GET", "/Users", query_string={"filter": 'name.familyName eq "martin"'}).get_json()
    assert names["totalResults"] == (1 if app_id == "maths-app" else 0)


def test_paging_runs_across_the_directory_and_the_apps_own(world):  # noqa: F811
    call = _client(world, "maths-app")
    for user in LOCAL_USERS:
        assert call("POST", "/Users", {"schemas": [USER], **user}).status_code == 201
    everyone = _ids(call("GET", "/Users").get_json())
    for start, count in ((1, 2), (2, 3), (len(everyone) - 5, 3), (len(everyone) - 1, 10), (len(everyone) + 3, 5),
                         (3, 0)):
        page = call("GET", "/Users", query_string={"startIndex": start, "count": count}).get_json()
        assert _ids(page) == everyone[start - 1:start - 1 + count], (start, count)
        assert page["totalResults"] == len(everyone) and page["startIndex"] == start
    text = 'emails co "." or userName sw "1"'
    matching = _ids(call("GET", "/Users", query_string={"filter": text}).get_json())
    page = call("GET", "/Users", query_string={"filter": text, "startIndex": 2, "count": 3}).get_json()
    assert _ids(page) == matching[1:4] and page["totalResults"] == len(matching)


def test_group_filters_answer_what_the_library_matches(world):  # noqa: F811
    call = _client(world, "maths-app")
    users = _ids(call("GET", "/Users").get_json())
    for name, members in (("Club", users[:2]), ("chorale", users[1:3]), ("Vide", [])):
        resp = call("POST", "/Groups", {"schemas": [GROUP], "displayName": name,
                                        "members": [{"value": m} for m in members]})
        assert resp.status_code == 201, resp.get_data(as_text=True)
    everyone = call("GET", "/Groups").get_json()["Resources"]
    assert len(everyone) > 3  # the directory's classes and the app's own
    models = [(g["id"], Group.model_validate(g)) for g in everyone]
    for text in ('displayName eq "club"', 'displayName sw "6"', f'members[value eq "{users[1]}"]',
                 f'members eq "{users[0]}"', 'members pr', 'not (members pr)', 'members.type eq "user"',
                 f'members.value eq "{users[0].upper()}"'):
        expected = [gid for gid, model in models if ScimFilter[Group](text).match(model)]
        body = call("GET", "/Groups", query_string={"filter": text}).get_json()
        assert _ids(body) == expected, text


@pytest.mark.parametrize("text,named", [
    ('meta.lastModified gt "2020-01-01T00:00:00Z"', "meta.lastModified"),
    ('x509Certificates.value eq "eA=="', "x509Certificates"),
    ('foo eq "x"', "foo"),
    ('name.nickname eq "x"', "name.nickname"),
    ('active co "t"', "active"),
    ('active eq "maybe"', "active"),
    ('userName eq 3', "userName"),
    ('userName eq', "column"),
    ('emails[type eq "work"', "column"),
])
def test_a_filter_we_cannot_answer_is_a_clear_invalid_filter(world, text, named):  # noqa: F811
    resp = _client(world, "maths-app")("GET", "/Users", query_string={"filter": text})
    assert resp.status_code == 400, resp.get_data(as_text=True)
    err = resp.get_json()
    assert err["scimType"] == "invalidFilter" and named.lower() in err["detail"].lower(), err

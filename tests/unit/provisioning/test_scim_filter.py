"""SCIM's filter parser and PATCH, on plain data."""

from __future__ import annotations

import pytest

from services.provisioning.api.scim import ScimError, apply_patch
from services.provisioning.api.scim_filter import FilterError, parse

PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def test_filter_and_patch_pieces():
    r = {"userName": "Bob", "id": "AbC", "emails": [{"type": "work", "value": "b@x.fr"}], "meta": {"version": 'W/"1"'}}
    assert parse('USERNAME eq "bob"')(r) and not parse('id eq "abc"')(r)  # id is caseExact
    assert parse('emails[type eq "work" and value co "@x"]')(r) and parse("emails pr")(r)
    assert parse('urn:ietf:params:scim:schemas:core:2.0:User:userName ne "al"')(r)
    with pytest.raises(FilterError):
        parse('(userName eq "a"')
    with pytest.raises(ScimError):
        apply_patch(r, {"schemas": [PATCH], "Operations": [{"op": "remove"}]})

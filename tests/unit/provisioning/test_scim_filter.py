"""SCIM PATCH on plain data: scim2-models' PatchOp behind our errors."""

from __future__ import annotations

import pytest

from services.provisioning.api.scim import ScimError, apply_patch

PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
USER = "urn:ietf:params:scim:schemas:core:2.0:User"


def test_patch_applies_value_paths_and_refuses_what_is_wrong():
    r = {"schemas": [USER], "userName": "Bob", "emails": [{"type": "work", "value": "b@x.fr"}]}
    out = apply_patch("User", r, {"schemas": [PATCH], "Operations": [
        {"op": "replace", "path": 'emails[type eq "work"].value', "value": "bob@x.fr"},
        {"op": "Add", "path": "name.givenName", "value": "Bob"},
        {"op": "add", "value": {"displayName": "Bobby", "password": "never kept"}}]})
    assert out["emails"] == [{"type": "work", "value": "bob@x.fr"}] and out["name"] == {"givenName": "Bob"}
    assert out["displayName"] == "Bobby" and "password" not in out and r["emails"][0]["value"] == "b@x.fr"
    for ops, scim_type in (([{"op": "remove"}], "noTarget"), ([{"op": "frob", "path": "title"}], "invalidValue"),
                           ([{"op": "replace", "path": "id", "value": "x"}], "mutability"),
                           ([{"op": "add", "path": "emails[type eq", "value": "x"}], "invalidPath"),
                           ([{"op": "replace", "path": "active", "value": "maybe"}], "invalidValue")):
        with pytest.raises(ScimError) as err:
            apply_patch("User", r, {"schemas": [PATCH], "Operations": ops})
        assert err.value.status == 400 and err.value.scim_type == scim_type and err.value.detail, ops
    with pytest.raises(ScimError):
        apply_patch("User", r, {"schemas": ["nope"], "Operations": [{"op": "remove", "path": "title"}]})

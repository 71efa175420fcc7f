"""What the vault's access log records, and forgets on erasure (services/vault/rules/access_log.py)."""
from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.vault.rules.access_log import ACTIONS, FORGOTTEN_ON_ERASURE, READ, ActorRefused, entry, rpc_actor

AT = datetime(2026, 11, 2, 10, 15, tzinfo=UTC)


def test_an_entry_says_who_did_what_to_which_version_and_when():
    assert entry(at=AT, actor="rpc:helpdesk-3", action=READ, person="2605692", vertical="documents",
                 item_id="Cours/td.pdf", version=2) == {
        "at": AT, "actor": "rpc:helpdesk-3", "action": "read", "person": "2605692", "vertical": "documents",
        "item_id": "Cours/td.pdf", "version": 2}
    assert ACTIONS == ("read", "versions", "restore")


def test_a_long_actor_is_cut_to_the_column_and_an_unknown_action_refused():
    assert entry(at=AT, actor="x" * 300, action="versions", person="p", vertical=None, item_id=None,
                 version=None)["actor"] == "x" * 128
    with pytest.raises(ValueError, match="access log action 'delete'"):
        entry(at=AT, actor="a", action="delete", person="p", vertical=None, item_id=None, version=None)


def test_an_erasure_forgets_item_ids_only():
    kept = entry(at=AT, actor="cli:ana", action=READ, person="2605692", vertical="documents",
                 item_id="Bulletin de Léa.pdf", version=1)
    after = {**kept, **FORGOTTEN_ON_ERASURE}
    assert after["item_id"] is None
    assert {k: v for k, v in after.items() if k != "item_id"} == {k: v for k, v in kept.items() if k != "item_id"}


def test_an_rpc_actor_is_the_caller_the_broker_vouched_for_which_the_call_may_only_narrow():
    assert rpc_actor("operator") == "rpc:operator"
    assert rpc_actor("operator", "operator") == "rpc:operator"
    assert rpc_actor("operator", "operator:jdupont") == "rpc:operator:jdupont"


@pytest.mark.parametrize("claimed", ["sso", "helpdesk", "operatorx", "operator:", "sso:operator", "console:operator"])
def test_an_rpc_actor_other_than_the_caller_is_refused(claimed):
    with pytest.raises(ActorRefused, match=f"actor {claimed!r} is not the caller, 'operator'"):
        rpc_actor("operator", claimed)

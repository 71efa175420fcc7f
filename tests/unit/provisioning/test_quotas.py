"""Quotas: seats per structure, structures per licence, freed seats to the oldest refusal first."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.provisioning.grants.quotas import next_in_line, quota_in, quota_problems, refusal

from .helpers import OTHER, UAI, resources

CATALOGUE = resources(
    {"id": "atlas", "licence": "per-user", "quota": 2, "quotas": {OTHER: 5}},
    {"id": "open", "licence": "per-user"},
    {"id": "labo", "licence": "per-structure", "quota": 1},
    {"id": "dico", "licence": "unlimited"},
)
T0 = datetime(2026, 9, 1, tzinfo=UTC)


def test_per_user_seats_are_counted_per_structure():
    atlas = CATALOGUE["atlas"]
    assert refusal(atlas, UAI, 1, ()) is None
    assert refusal(atlas, UAI, 2, ()) == f"quota exhausted: 2 licence(s) of atlas in {UAI} are all held"
    assert refusal(atlas, OTHER, 4, ()) is None  # its own quota there
    assert refusal(atlas, OTHER, 5, ()) is not None
    assert refusal(CATALOGUE["open"], UAI, 10_000, ()) is None  # no quota: no limit


def test_per_structure_licences_count_structures():
    labo = CATALOGUE["labo"]
    assert refusal(labo, UAI, 0, set()) is None
    assert refusal(labo, UAI, 300, {UAI}) is None  # a structure holding it takes any number of accounts
    assert refusal(labo, OTHER, 0, {UAI}) == "quota exhausted: labo is licensed to 1 structure(s), all taken"


def test_unlimited_licences_are_never_refused():
    assert refusal(CATALOGUE["dico"], UAI, 10**9, {OTHER}) is None


def test_the_quota_that_applies():
    assert quota_in(CATALOGUE["atlas"], UAI) == 2 and quota_in(CATALOGUE["atlas"], OTHER) == 5
    assert quota_in(CATALOGUE["labo"], UAI) == 1 and quota_in(CATALOGUE["dico"], UAI) is None


def test_freed_seats_go_to_the_oldest_refusal_first():
    refused = [("0", T0 + timedelta(hours=2)), ("3", T0), ("1", T0 + timedelta(hours=1)), ("2", T0)]
    assert next_in_line(refused) == ["2", "3", "1", "0"]  # same time: by jointure


def test_an_account_waiting_in_two_pools_comes_once_at_its_oldest_refusal():
    refused = [("9", T0 + timedelta(hours=3)), ("5", T0 + timedelta(hours=1)), ("9", T0)]
    assert next_in_line(refused) == ["9", "5"]


def test_accounts_just_reconciled_are_not_offered_again():
    assert next_in_line([("1", T0), ("2", T0)], skip={"1"}) == ["2"]


def test_a_quota_below_the_licences_held_is_a_problem():
    held = [("atlas", UAI, 3), ("atlas", OTHER, 5), ("labo", UAI, 10), ("labo", OTHER, 1), ("gone", UAI, 4)]
    assert quota_problems(CATALOGUE, held) == [
        f"resource atlas: quota 2 in {UAI} is below the 3 licences held there; revoke some first or raise the quota",
        "resource labo: quota of 1 structures is below the 2 structures holding it",
    ]
    assert quota_problems(CATALOGUE, [("atlas", UAI, 2), ("labo", UAI, 40)]) == []

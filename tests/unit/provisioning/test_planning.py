"""Grant planning: new grants, revocations now, departures after the grace period, manual grants kept."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.provisioning.grants.planning import Held, plan

from .helpers import OTHER, UAI, pupil

NOW = datetime(2026, 9, 15, 8, 0, tzinfo=UTC)
KEY = ("maths6", UAI)


def test_a_grant_wanted_and_not_held_is_given_with_its_cause():
    p = plan({}, {KEY: "rule:r"}, pupil(), NOW, 30)
    assert p.grant == {KEY: "rule:r"} and not (p.revoke or p.defer or p.cancel or p.recause)


def test_nothing_to_do_is_an_empty_plan():
    assert not plan({KEY: Held("rule:r")}, {KEY: "rule:r"}, pupil(), NOW, 30)


def test_no_longer_selected_in_the_structure_revokes_at_once():
    p = plan({KEY: Held("rule:maths-6a")}, {}, pupil(klass="6B"), NOW, 30)
    assert p.revoke == {KEY: "no-longer-selected (rule:maths-6a)"}


def test_a_departure_waits_for_the_grace_period():
    moved = pupil(uai=OTHER)  # no longer in UAI
    p = plan({KEY: Held("rule:r")}, {}, moved, NOW, 30)
    assert p.defer == {KEY: NOW + timedelta(days=30)} and not p.revoke
    assert plan({KEY: Held("rule:r")}, {}, None, NOW, 30).defer == {KEY: NOW + timedelta(days=30)}  # left the directory


def test_a_departure_is_revoked_once_the_grace_period_is_over():
    pending = Held("rule:r", revoke_after=NOW + timedelta(days=1))
    assert not plan({KEY: pending}, {}, None, NOW, 30)  # still running: nothing changes
    assert plan({KEY: pending}, {}, None, NOW + timedelta(days=1), 30).revoke == {KEY: "departure"}


def test_no_grace_period_revokes_a_departure_at_once():
    assert plan({KEY: Held("rule:r")}, {}, None, NOW, 0).revoke == {KEY: "departure"}


def test_coming_back_within_the_grace_period_cancels_the_revocation():
    pending = Held("rule:r", revoke_after=NOW + timedelta(days=10))
    assert plan({KEY: pending}, {KEY: "rule:r"}, pupil(), NOW, 30).cancel == [KEY]


def test_rules_never_take_back_a_manual_grant():
    assert not plan({KEY: Held("manual:D1")}, {}, pupil(klass="6B"), NOW, 30)
    pending = Held("manual:D1", revoke_after=NOW + timedelta(days=3))
    assert plan({KEY: pending}, {}, pupil(), NOW, 30).cancel == [KEY]  # back in the structure
    assert plan({KEY: Held("manual:D1")}, {}, None, NOW, 30).defer  # but a departure applies to it too


def test_a_grant_still_wanted_under_another_rule_changes_cause():
    p = plan({KEY: Held("rule:old")}, {KEY: "rule:new"}, pupil(), NOW, 30)
    assert p.recause == {KEY: "rule:new"} and not p.grant and not p.revoke
    assert not plan({KEY: Held("manual:D1")}, {KEY: "rule:new"}, pupil(), NOW, 30)  # a manual one keeps its cause

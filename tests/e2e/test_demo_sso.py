"""The demo's SSO step (relais/demo_sso.py) on a small academy: a pupil and their parent log in through the
pysaml2 stand-in for ÉduConnect and reach the CAS app as themselves; the pupil then an OIDC client."""

from __future__ import annotations

import re

from tests.saml_peers import import_sample_directory
from tools.demo import sso as demo_sso


def test_a_pupil_and_a_parent_log_in_through_the_local_idp_into_the_cas_app(sqlite_engine, tmp_path, capsys):
    import_sample_directory(sqlite_engine, tmp_path)
    assert demo_sso.run(sqlite_engine, "test", tmp_path / "sso", "2001")
    out = capsys.readouterr().out
    assert "the app's ticket names 2001: uid=2001; ENTPersonProfils=National_ELV" in out
    assert "the app's ticket names R3: uid=R3" in out and "ENTAuxPersRelEleveEleve=2001" in out
    assert (tmp_path / "sso" / "sp.key").stat().st_mode & 0o077 == 0  # the keys made at run time stay private
    oidc = next(x for x in out.splitlines() if "the OIDC client elea" in x)  # the pupil, on the same session
    assert "ENTPersonProfils=National_ELV" in oidc and "given_name=" in oidc
    assert re.search(r"knows sub=[a-z2-7]{52}: ", oidc)  # a pairwise subject, not the jointure


def test_a_pupil_without_legal_guardians_is_said_so(sqlite_engine, tmp_path, capsys):
    import_sample_directory(sqlite_engine, tmp_path)
    assert not demo_sso.run(sqlite_engine, "test", tmp_path / "sso", "nobody")
    assert "not in the directory" in capsys.readouterr().out


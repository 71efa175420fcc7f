"""Fixtures of the vault's tests."""

from __future__ import annotations

import pytest

from relais.config import Settings
from relais.db import make_engine, upgrade
from services.vault.adapters.local_store import LocalStore
from services.vault.items import Vault


@pytest.fixture
def cli_vault(settings_env, tmp_path, monkeypatch) -> Vault:
    """The vault `relais vault ...` opens under `settings_env` (its database, migrated; tenant "test"'s local store
    under tmp_path/var), for command-line tests to fill."""
    monkeypatch.delenv("RELAIS_VAULT_S3_ENDPOINT", raising=False)
    engine = make_engine(Settings.from_env().database_url)
    upgrade(engine)
    return Vault(engine, LocalStore(tmp_path / "var" / "vault", "test"))

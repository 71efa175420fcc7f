"""The subject tests' person in every service (`world.make_world`), on SQLite and PostgreSQL."""
from __future__ import annotations

import pytest

from tests.subject.world import make_world


@pytest.fixture
def world(engine, amqp_uri, moto_s3, tmp_path, monkeypatch):
    return make_world(engine, amqp_uri, moto_s3, tmp_path, monkeypatch)

"""The application's attribute source keeps structures' UAIs for a while (one directory call less per ticket
validation), then asks the directory again, so a corrected UAI is seen."""

from __future__ import annotations

from sqlalchemy import update

from relais.db import writer
from services.directory.adapters import tables
from services.directory.api import Directory
from services.sso.attribute_source import AttributeSource
from tests.saml_peers import import_sample_directory


class Counting:
    """The real directory, counting the structure lookups."""

    def __init__(self, directory: Directory) -> None:
        self.directory = directory
        self.structure_calls = 0

    def get_structure(self, key: str):
        self.structure_calls += 1
        return self.directory.get_structure(key)

    def __getattr__(self, name):
        return getattr(self.directory, name)


def test_uais_are_kept_for_the_ttl_then_read_again(sqlite_engine, tmp_path):
    import_sample_directory(sqlite_engine, tmp_path)
    directory = Counting(Directory(sqlite_engine, "test"))
    now = [1000.0]
    source = AttributeSource(directory, uai_ttl=300, clock=lambda: now[0])
    assert source.for_person("1001")["ENTPersonStructRattachUAI"] == ["0750001A"]
    assert source.for_person("1002")["ENTPersonStructRattachUAI"] == ["0750001A"]  # same school: kept
    assert directory.structure_calls == 1
    with writer(sqlite_engine).begin() as conn:  # the directory corrects the UAI (without an import, for brevity)
        row = conn.execute(tables.structure.select().where(tables.structure.c.jointure == "S1")).mappings().one()
        conn.execute(update(tables.structure).where(tables.structure.c.jointure == "S1").values(
            data=row["data"].replace(b"0750001A", b"0750009Z")))
    now[0] += 299
    assert source.for_person("1001")["ENTPersonStructRattachUAI"] == ["0750001A"]
    now[0] += 1
    assert source.for_person("1001")["ENTPersonStructRattachUAI"] == ["0750009Z"]
    assert directory.structure_calls == 2


def test_without_a_ttl_a_source_keeps_what_it_read_for_its_own_life(sqlite_engine, tmp_path):
    import_sample_directory(sqlite_engine, tmp_path)
    directory = Counting(Directory(sqlite_engine, "test"))
    source = AttributeSource(directory)
    for _ in range(3):
        source.for_person("1001")
    assert directory.structure_calls == 1

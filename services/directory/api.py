"""The directory's use cases behind one facade, for any entrypoint (RPC, CLI, tests).

Its query methods are the RPC contract (`process.py` serves them as they are),
and the SSO reads people through it (its directory port, handed in by `app/`).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from sqlalchemy import Engine

from .adapters import queries
from .importing.options import ImportOptions, ProgressFn
from .importing.report import ImportReport
from .importing.run import DirectoryImporter


class Directory:
    def __init__(self, engine: Engine, tenant: str):
        self.engine = engine
        self.tenant = tenant

    def import_files(self, paths: Iterable[Path], options: ImportOptions | None = None,
                     progress: ProgressFn | None = None) -> ImportReport:
        return DirectoryImporter(self.engine, self.tenant, options).run(paths, progress)

    def _read(self, fn, *args, **kwargs):
        with self.engine.connect() as conn:
            return fn(conn, *args, **kwargs)

    def get_person(self, jointure: str) -> dict | None:
        return self._read(queries.person, jointure)

    def find_pupils(self, struct_rattach_id: str, uai: str) -> list[dict]:
        return self._read(queries.pupils_by_attachment, struct_rattach_id, uai)

    def find_parents(self, pupil_struct_rattach_id: str, uai: str, last_name: str, first_name: str) -> list[dict]:
        return self._read(queries.parents_of_pupil, pupil_struct_rattach_id, uai, last_name, first_name)

    def find_by_ine(self, ine: str) -> list[dict]:
        return self._read(queries.by_ine, ine)

    def find_by_email(self, email: str) -> list[dict]:
        return self._read(queries.by_email, email)

    def search_people(self, text: str, structures: list[str] | None = None, limit: int = 50) -> list[dict]:
        """By jointure, INE or name (the operator console's search); within `structures` when given."""
        return self._read(queries.search, text, structures=structures, limit=limit)

    def members(self, structure: str, class_code: str | None = None, group_code: str | None = None) -> list[dict]:
        return self._read(queries.members, structure, class_code=class_code, group_code=group_code)

    def children(self, relative: str) -> list[dict]:
        return self._read(queries.children, relative)

    def legal_guardians(self, pupil: str) -> list[dict]:
        return self._read(queries.legal_guardians, pupil)

    def get_structure(self, key: str) -> dict | None:
        return self._read(queries.structure, key)

    def last_import(self) -> dict | None:
        return self._read(queries.last_import)

    def family_counts(self) -> dict[str, int]:
        return self._read(queries.family_counts)

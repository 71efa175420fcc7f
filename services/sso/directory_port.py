"""The SSO service's view of the directory: a port with the directory's RPC method names.

In production this is the nameko RPC proxy to the `directory` service (its
methods have these names and return these dicts); embedded and in tests it is
`services.directory.api.Directory` over the same database. Both satisfy
`DirectoryPort` without an adapter.
"""

from __future__ import annotations

from typing import Protocol


class DirectoryPort(Protocol):
    def get_person(self, jointure: str) -> dict | None:
        """The canonical Person record (contracts/README.md), or None."""

    def get_structure(self, key: str) -> dict | None:
        """A structure by jointure or UAI, or None."""

    def find_pupils(self, struct_rattach_id: str, uai: str) -> list[dict]: ...

    def find_parents(self, pupil_struct_rattach_id: str, uai: str, last_name: str, first_name: str) -> list[dict]: ...

    def find_by_email(self, email: str) -> list[dict]: ...

    def children(self, relative: str) -> list[dict]:
        """Pupils naming this person as a relative."""

"""AAF file names, and the files an import reads.

An export's files are named `<project>_<Complet|Delta>_<yyyymmdd>_<family>_<number>.xml`:
the name says whether the file lists a family whole (Complet) or only
changes (Delta), and of which family. `expand_paths` lists the files named
and the `.xml` files of the folders named, in the order a run imports them
(`rules/import_order.py`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ...rules.families import FAMILY_BY_CATEGORY
from ...rules.import_order import order_key

_FILENAME = re.compile(
    r"(?P<project>[^_/\\]+)_(?P<kind>Complet|Delta)_(?P<date>\d{8})_(?P<family>[A-Za-z0-9]+)_(?P<number>\d+)\.xml$"
)


@dataclass(frozen=True, slots=True)
class FileInfo:
    path: Path
    project: str | None
    kind: str | None  # "Complet" | "Delta" | None when the name says nothing
    date: str | None
    family: str | None
    number: int | None

    @property
    def export_key(self) -> str | None:
        """Files sharing this key belong to one export of one family."""
        if self.kind is None:
            return None
        return f"{self.project}_{self.kind}_{self.date}_{self.family}"


def file_info(path: Path) -> FileInfo:
    m = _FILENAME.search(path.name)
    if not m:
        return FileInfo(path, None, None, None, None, None)
    family = FAMILY_BY_CATEGORY.get(m["family"], m["family"])
    return FileInfo(path, m["project"], m["kind"], m["date"], family, int(m["number"]))


def expand_paths(paths: Iterable[Path]) -> list[FileInfo]:
    """Files named, and *.xml files in folders named, ordered so references resolve early."""
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files.extend(sorted(q for q in p.iterdir() if q.suffix.lower() == ".xml" and q.is_file()))
        elif p.exists():
            files.append(p)
        else:
            raise FileNotFoundError(f"no such file or folder: {p}")
    return sorted((file_info(f) for f in files), key=lambda i: order_key(i.family, i.path.name))

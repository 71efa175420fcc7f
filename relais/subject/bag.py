"""A BagIt bag (RFC 8493) written file by file, for the export a person is given.

`SubjectBag(folder)`: `add(path, chunks)` streams a payload file under `data/` while hashing it,
`finish(info)` writes `bagit.txt`, `bag-info.txt`, `manifest-sha256.txt` and
`tagmanifest-sha256.txt`. Any stock BagIt tool validates the result (the tests use the Library of
Congress's `bagit`). Payload paths are chosen by the caller from safe parts (`safe_part`).
"""
from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from datetime import date
from pathlib import Path

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class BagError(ValueError):
    pass


def safe_part(text: str, limit: int = 80) -> str:
    """A file name part made of `text` with nothing a file system or a manifest line could trip on."""
    part = _UNSAFE.sub("_", text).strip("._")[:limit]
    return part or "_"


class SubjectBag:
    def __init__(self, folder: Path) -> None:
        if folder.exists() and any(folder.iterdir()):
            raise BagError(f"{folder} is not empty: give a new folder for the bag")
        self.root = folder
        (folder / "data").mkdir(parents=True, exist_ok=True)
        self.manifest: dict[str, str] = {}
        self.bytes = 0

    def add(self, relative: str, chunks: Iterable[bytes]) -> str:
        """Write `data/<relative>` from `chunks`; its sha256."""
        if relative.startswith("/") or ".." in relative.split("/") or "\\" in relative:
            raise BagError(f"{relative!r}: a payload path must stay inside the bag")
        path = self.root / "data" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        h = hashlib.sha256()
        with path.open("xb") as f:
            for chunk in chunks:
                h.update(chunk)
                f.write(chunk)
                self.bytes += len(chunk)
        self.manifest[f"data/{relative}"] = h.hexdigest()
        return h.hexdigest()

    def finish(self, info: Mapping[str, str]) -> Path:
        files = len(self.manifest)
        tags = {
            "bagit.txt": "BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n",
            "bag-info.txt": "".join(f"{k}: {_one_line(v)}\n" for k, v in {
                **info, "Bagging-Date": date.today().isoformat(), "Payload-Oxum": f"{self.bytes}.{files}"}.items()),
            "manifest-sha256.txt": "".join(f"{d}  {p}\n" for p, d in sorted(self.manifest.items())),
        }
        tag_digests = {}
        for name, text in tags.items():
            data = text.encode("utf-8")
            (self.root / name).write_bytes(data)
            tag_digests[name] = hashlib.sha256(data).hexdigest()
        (self.root / "tagmanifest-sha256.txt").write_text(
            "".join(f"{d}  {n}\n" for n, d in sorted(tag_digests.items())), encoding="utf-8")
        return self.root


def _one_line(value: str) -> str:
    return " ".join(str(value).split())

"""BagIt (RFC 8493) writer, reader and validator for Relais vault archives.

Written in-house (small, no dependency) so errors can name the exact file that fails and
paths are checked against our safety rules (no ``..``, no absolute paths, Unicode NFC).
"""
from __future__ import annotations

import hashlib
import os
import unicodedata
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from ..rules.item_ids import UnsafePath, safe_path

BAGIT_VERSION = "1.0"
FORMAT_VERSION = "1.1"  # contracts/vault/SPEC.md; packing.py writes 1.1 and reads 1.0


class BagError(ValueError):
    """A bag is malformed or does not validate; the message names the offending file."""


def _safe(rel: str) -> str:
    """The NFC-normalised POSIX form of a path in the bag (`rules.item_ids.safe_path`, the rule item
    ids follow too); BagError if it could escape the bag."""
    try:
        return safe_path(rel)
    except UnsafePath as exc:
        raise BagError(str(exc)) from None


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 16), b""):
            h.update(chunk)
    return h.hexdigest()


def _encode_manifest_path(rel: str) -> str:
    # RFC 8493 §2.1.3: percent-encode CR, LF and '%'.
    return rel.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _decode_manifest_path(rel: str) -> str:
    return rel.replace("%0D", "\r").replace("%0A", "\n").replace("%25", "%")


@dataclass
class Bag:
    """A bag read from disk: its root, bag-info fields and payload checksums (path -> sha256)."""

    root: Path
    info: dict[str, list[str]] = field(default_factory=dict)
    manifest: dict[str, str] = field(default_factory=dict)

    def payload_path(self, rel: str) -> Path:
        return self.root / "data" / _safe(rel)


def write_bag(root: Path, payload: dict[str, bytes], info: dict[str, str]) -> Bag:
    """Write a complete bag at ``root`` (which must not exist or be empty).

    ``payload`` maps a relative path under ``data/`` to its bytes. ``info`` gives bag-info
    fields; Payload-Oxum, Bagging-Date and Relais-Format-Version are added.
    """
    root.mkdir(parents=True, exist_ok=True)
    if any(root.iterdir()):
        raise BagError(f"bag directory {root} is not empty")
    manifest: dict[str, str] = {}
    total = 0
    for rel, data in payload.items():
        rel = _safe(rel)
        if rel in manifest:
            raise BagError(f"duplicate payload path {rel!r} after Unicode normalisation")
        target = root / "data" / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        manifest[rel] = hashlib.sha256(data).hexdigest()
        total += len(data)
    (root / "data").mkdir(exist_ok=True)
    (root / "bagit.txt").write_text(
        f"BagIt-Version: {BAGIT_VERSION}\nTag-File-Character-Encoding: UTF-8\n", encoding="utf-8")
    fields = {"Bagging-Date": date.today().isoformat(), "Relais-Format-Version": FORMAT_VERSION, **info,
              "Payload-Oxum": f"{total}.{len(payload)}"}
    lines = []
    for k, v in fields.items():
        if ":" in k or "\n" in k or "\n" in str(v):
            raise BagError(f"bag-info field {k!r} must be single-line without ':' in its name")
        lines.append(f"{k}: {v}\n")
    (root / "bag-info.txt").write_text("".join(lines), encoding="utf-8")
    (root / "manifest-sha256.txt").write_text(
        "".join(f"{h}  data/{_encode_manifest_path(p)}\n" for p, h in sorted(manifest.items())),
        encoding="utf-8")
    tags = ["bagit.txt", "bag-info.txt", "manifest-sha256.txt"]
    (root / "tagmanifest-sha256.txt").write_text(
        "".join(f"{_sha256(root / t)}  {t}\n" for t in tags), encoding="utf-8")
    return read_bag(root)


def parse_manifest(text: str, name: str) -> dict[str, str]:
    """A manifest's ``<sha256>  <path>`` lines: path (decoded, NFC, safe) -> sha256; BagError naming the line."""
    out: dict[str, str] = {}
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            digest, rel = line.split(None, 1)
        except ValueError:
            raise BagError(f"{name} line {n}: expected '<sha256> <path>'") from None
        out[_safe(_decode_manifest_path(rel.strip()))] = digest.lower()
    return out


def parse_bag_info(text: str) -> dict[str, list[str]]:
    """bag-info.txt's ``Label: value`` lines (a line starting with white space continues the value before):
    label -> its values in order; BagError naming the line."""
    info: dict[str, list[str]] = {}
    last = None
    for n, line in enumerate(text.splitlines(), 1):
        if line[:1] in (" ", "\t") and last:
            info[last][-1] += " " + line.strip()
            continue
        if ":" not in line:
            raise BagError(f"bag-info.txt line {n}: expected 'Label: value'")
        k, v = line.split(":", 1)
        last = k.strip()
        info.setdefault(last, []).append(v.strip())
    return info


def _parse_manifest(path: Path) -> dict[str, str]:
    return parse_manifest(path.read_text(encoding="utf-8"), path.name)


def read_bag(root: Path) -> Bag:
    """Parse a bag's tag files (no checksum verification; see :func:`validate_bag`)."""
    for name in ("bagit.txt", "bag-info.txt", "manifest-sha256.txt"):
        if not (root / name).is_file():
            raise BagError(f"missing tag file {name} in {root}")
    info = parse_bag_info((root / "bag-info.txt").read_text(encoding="utf-8"))
    manifest = {}
    for rel, h in _parse_manifest(root / "manifest-sha256.txt").items():
        if not rel.startswith("data/"):
            raise BagError(f"manifest-sha256.txt: payload path {rel!r} is not under data/")
        manifest[rel[len("data/"):]] = h
    return Bag(root=root, info=info, manifest=manifest)


def validate_bag(root: Path) -> Bag:
    """Fully validate a bag: tag manifest, payload manifest both ways, and Payload-Oxum."""
    bag = read_bag(root)
    if (root / "tagmanifest-sha256.txt").is_file():
        for rel, h in _parse_manifest(root / "tagmanifest-sha256.txt").items():
            p = root / rel
            if not p.is_file():
                raise BagError(f"tag file {rel} listed in tagmanifest-sha256.txt is missing")
            if _sha256(p) != h:
                raise BagError(f"tag file {rel} does not match its sha256 in tagmanifest-sha256.txt")
    data = root / "data"
    on_disk = set()
    total = 0
    for dirpath, _dirs, files in os.walk(data):
        for f in files:
            full = Path(dirpath) / f
            rel = unicodedata.normalize("NFC", full.relative_to(data).as_posix())
            on_disk.add(rel)
            total += full.stat().st_size
    for rel in sorted(on_disk - bag.manifest.keys()):
        raise BagError(f"payload file data/{rel} is not listed in manifest-sha256.txt")
    for rel, h in sorted(bag.manifest.items()):
        if rel not in on_disk:
            raise BagError(f"payload file data/{rel} listed in manifest-sha256.txt is missing")
        if _sha256(bag.payload_path(rel)) != h:
            raise BagError(f"payload file data/{rel} does not match its sha256 in manifest-sha256.txt")
    oxum = bag.info.get("Payload-Oxum", [None])[0]
    if oxum is not None and oxum != f"{total}.{len(on_disk)}":
        raise BagError(f"bag-info.txt Payload-Oxum {oxum} != actual {total}.{len(on_disk)}")
    return bag

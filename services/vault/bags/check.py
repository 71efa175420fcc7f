"""Validate a bag wherever it is (folder, zip, S3 prefix), streaming, naming the file at fault.

The rules are contracts/vault/SPEC.md §4 (RFC 8493 §3): the tag manifest matches every tag file it lists;
every file under ``data/`` is listed in ``manifest-sha256.txt`` and every listed file is there and hashes to
what it says; ``Payload-Oxum`` gives the payload's bytes and file count. Each file is read once, in chunks.
``archive/bagit.py::validate_bag`` says the same of a bag in a folder; this one reads any
:class:`~.targets.BagReader`.
"""
from __future__ import annotations

import hashlib
import unicodedata
from dataclasses import dataclass, field

from ..archive.bagit import BagError, parse_bag_info, parse_manifest
from .targets import TAGMANIFEST, BagReader, read_all

TAG_FILES = ("bagit.txt", "bag-info.txt", "manifest-sha256.txt")


@dataclass
class CheckedBag:
    """A bag that validated: its bag-info fields, payload manifest (``data/...`` path -> sha256), the
    payload's bytes and file count, and the sha256 of its tag manifest (which pins every other file)."""

    where: str
    info: dict[str, list[str]] = field(default_factory=dict)
    manifest: dict[str, str] = field(default_factory=dict)
    bytes: int = 0
    files: int = 0
    tagmanifest_sha256: str = ""

    def first(self, label: str) -> str | None:
        values = self.info.get(label)
        return values[0] if values else None


def _text(reader: BagReader, rel: str) -> str:
    try:
        return read_all(reader, rel).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BagError(f"{reader.where}: {rel} is not UTF-8: {exc}") from None


def _sha256(reader: BagReader, rel: str) -> str:
    h = hashlib.sha256()
    for chunk in reader.chunks(rel):
        h.update(chunk)
    return h.hexdigest()


def check_bag(reader: BagReader) -> CheckedBag:
    """Validate the bag ``reader`` reads; BagError naming the bag and the file at fault."""
    where = reader.where
    on_disk = {unicodedata.normalize("NFC", rel): (rel, size) for rel, size in reader.files().items()}
    for name in TAG_FILES:
        if name not in on_disk:
            raise BagError(f"{where}: missing tag file {name}")
    bag = CheckedBag(where=where, info=parse_bag_info(_text(reader, "bag-info.txt")))
    if TAGMANIFEST in on_disk:
        bag.tagmanifest_sha256 = _sha256(reader, on_disk[TAGMANIFEST][0])
        for rel, h in parse_manifest(_text(reader, TAGMANIFEST), TAGMANIFEST).items():
            if rel not in on_disk:
                raise BagError(f"{where}: tag file {rel} listed in {TAGMANIFEST} is missing")
            if _sha256(reader, on_disk[rel][0]) != h:
                raise BagError(f"{where}: tag file {rel} does not match its sha256 in {TAGMANIFEST}")
    manifest = parse_manifest(_text(reader, "manifest-sha256.txt"), "manifest-sha256.txt")
    for rel in manifest:
        if not rel.startswith("data/"):
            raise BagError(f"{where}: manifest-sha256.txt: payload path {rel!r} is not under data/")
    payload = {rel: v for rel, v in on_disk.items() if rel.startswith("data/")}
    for rel in sorted(payload.keys() - manifest.keys()):
        raise BagError(f"{where}: payload file {rel} is not listed in manifest-sha256.txt")
    for rel in sorted(manifest.keys() - payload.keys()):
        raise BagError(f"{where}: payload file {rel} listed in manifest-sha256.txt is missing")
    for rel, h in sorted(manifest.items()):
        if _sha256(reader, payload[rel][0]) != h:
            raise BagError(f"{where}: payload file {rel} does not match its sha256 in manifest-sha256.txt")
    bag.manifest = manifest
    bag.bytes, bag.files = sum(size for _rel, size in payload.values()), len(payload)
    oxum = bag.first("Payload-Oxum")
    if oxum is not None and oxum != f"{bag.bytes}.{bag.files}":
        raise BagError(f"{where}: bag-info.txt Payload-Oxum {oxum} != actual {bag.bytes}.{bag.files}")
    return bag

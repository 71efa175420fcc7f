"""Where bags go and come from: a folder, a folder of zips, an S3 prefix. Adapters, streaming both ways.

- **folder**: ``<folder>/<name>/`` is a bag, written in ``<folder>/.partial-<name>/`` and renamed when whole;
- **zip**: ``<folder>/<name>.zip`` is a bag serialized as RFC 8493 §4 says (one archive, one top-level folder
  named as the bag), entries stored uncompressed, written to ``<name>.zip.partial`` and renamed when whole;
- **S3**: ``s3://<bucket>/<prefix>`` holds ``<prefix><name>/...``, one object a file; a bag being written
  has no ``tagmanifest-sha256.txt`` yet (it is written last), so a bag with one is whole, and one without
  is partial: its objects are removed and the bag written again.

So a process killed at any moment leaves whole bags (skipped when they still validate and say what the
vault holds) and partial ones, which are redone. Every file is written from an iterator of chunks and
hashed as it goes (:meth:`BagWriter.add`); nothing is ever whole in memory. Paths in messages name the
bag and the file, never credentials.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, BinaryIO, Protocol, cast
from urllib.parse import urlsplit

from ..archive.bagit import BagError
from .streams import ChunkStream

TAGMANIFEST = "tagmanifest-sha256.txt"  # written last: a bag that has it is whole
CHUNK = 1 << 20


class TargetError(Exception):
    """A destination or source of bags that cannot be used; the message says which and why."""


class BagWriter(Protocol):
    def add(self, rel: str, chunks: Iterable[bytes], size: int) -> tuple[str, int]:
        """Write the file ``rel`` (relative to the bag's root) from ``chunks``; its sha256 and size."""

    def commit(self) -> None:
        """Make the bag whole (after every file, tag files last)."""

    def abort(self) -> None: ...


class BagReader(Protocol):
    where: str

    def files(self) -> dict[str, int]:
        """Every file of the bag, relative to its root, with its size."""

    def chunks(self, rel: str) -> Iterator[bytes]: ...

    def close(self) -> None: ...


class BagTarget(Protocol):
    @property
    def where(self) -> str: ...

    def names(self) -> list[str]:
        """The whole bags there, by name."""

    def reader(self, name: str) -> BagReader | None:
        """The whole bag ``name``, or None when there is none (or only a partial one)."""

    def writer(self, name: str) -> BagWriter:
        """Start writing ``name`` afresh (a partial one is removed; a whole one is replaced on commit)."""


def read_all(reader: BagReader, rel: str) -> bytes:
    """A small file of a bag (tag files, index.json)."""
    return b"".join(reader.chunks(rel))


def _blocks(f: IO[bytes]) -> Iterator[bytes]:
    while block := f.read(CHUNK):
        yield block


@dataclass
class _LocalTarget:
    """Bags in a local folder (one bag a folder, or a zip): none while the folder is not there."""

    root: Path

    @property
    def where(self) -> str:
        return str(self.root)

    def names(self) -> list[str]:
        return sorted(self._names()) if self.root.is_dir() else []

    def _names(self) -> Iterator[str]:
        raise NotImplementedError


def _copy(chunks: Iterable[bytes], write: Callable[[bytes], object]) -> tuple[str, int]:
    h, n = hashlib.sha256(), 0
    for chunk in chunks:
        h.update(chunk)
        write(chunk)
        n += len(chunk)
    return h.hexdigest(), n


# -- a folder of bags ------------------------------------------------------------------------------------


class _FolderWriter:
    def __init__(self, root: Path, name: str) -> None:
        self.final, self.partial = root / name, root / f".partial-{name}"
        shutil.rmtree(self.partial, ignore_errors=True)
        self.partial.mkdir(parents=True)
        self.made: set[Path] = {self.partial}

    def add(self, rel: str, chunks: Iterable[bytes], size: int) -> tuple[str, int]:
        path = self.partial / rel
        if path.parent not in self.made:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.made.add(path.parent)
        with path.open("wb") as f:
            return _copy(chunks, f.write)

    def commit(self) -> None:
        if self.final.exists():
            shutil.rmtree(self.final)
        os.replace(self.partial, self.final)

    def abort(self) -> None:
        shutil.rmtree(self.partial, ignore_errors=True)


class _FolderReader:
    def __init__(self, root: Path) -> None:
        self.root, self.where = root, str(root)

    def files(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for dirpath, _dirs, names in os.walk(self.root):
            for n in names:
                p = Path(dirpath) / n
                out[p.relative_to(self.root).as_posix()] = p.stat().st_size
        return out

    def chunks(self, rel: str) -> Iterator[bytes]:
        with (self.root / rel).open("rb") as f:
            yield from _blocks(f)

    def close(self) -> None:
        pass


class FolderTarget(_LocalTarget):
    def _names(self) -> Iterator[str]:
        return (p.name for p in self.root.iterdir()
                if p.is_dir() and not p.name.startswith(".") and (p / TAGMANIFEST).is_file())

    def reader(self, name: str) -> BagReader | None:
        bag = self.root / name
        return _FolderReader(bag) if (bag / TAGMANIFEST).is_file() else None

    def writer(self, name: str) -> BagWriter:
        return _FolderWriter(self.root, name)


# -- a folder of zips --------------------------------------------------------------------------------


class _ZipWriter:
    def __init__(self, root: Path, name: str) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.name, self.final, self.partial = name, root / f"{name}.zip", root / f"{name}.zip.partial"
        self.zip = zipfile.ZipFile(self.partial, "w", zipfile.ZIP_STORED, allowZip64=True)

    def add(self, rel: str, chunks: Iterable[bytes], size: int) -> tuple[str, int]:
        with self.zip.open(f"{self.name}/{rel}", "w", force_zip64=size >= zipfile.ZIP64_LIMIT) as f:
            return _copy(chunks, f.write)

    def commit(self) -> None:
        self.zip.close()
        os.replace(self.partial, self.final)

    def abort(self) -> None:
        with suppress(Exception):
            self.zip.close()
        self.partial.unlink(missing_ok=True)


class _ZipReader:
    def __init__(self, path: Path, name: str) -> None:
        self.where = str(path)
        try:
            self.zip = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError) as exc:
            raise TargetError(f"{path}: not a readable zip: {exc}") from None
        self.entries: dict[str, zipfile.ZipInfo] = {}
        for info in self.zip.infolist():
            if info.is_dir():
                continue
            top, _, rel = info.filename.partition("/")
            if top != name or not rel:
                raise TargetError(f"{path}: entry {info.filename!r} is outside the bag's one top-level folder "
                                  f"{name}/ (RFC 8493 §4)")
            self.entries[rel] = info

    def files(self) -> dict[str, int]:
        return {rel: info.file_size for rel, info in self.entries.items()}

    def chunks(self, rel: str) -> Iterator[bytes]:
        try:
            with self.zip.open(self.entries[rel]) as f:
                yield from _blocks(f)
        except zipfile.BadZipFile as exc:  # its CRC-32 does not match: a changed byte
            raise BagError(f"{self.where}: file {rel} is damaged in the zip: {exc}") from None

    def close(self) -> None:
        self.zip.close()


class ZipTarget(_LocalTarget):
    def _names(self) -> Iterator[str]:
        return (p.name[:-4] for p in self.root.glob("*.zip") if p.is_file())

    def reader(self, name: str) -> BagReader | None:
        path = self.root / f"{name}.zip"
        return _ZipReader(path, name) if path.is_file() else None

    def writer(self, name: str) -> BagWriter:
        return _ZipWriter(self.root, name)


# -- an S3 prefix ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class S3Location:
    """``s3://bucket/prefix`` and the server's URL and credentials (the secret never shown)."""

    bucket: str
    prefix: str
    url: str
    access_key: str
    secret_key: str = field(repr=False)

    @property
    def where(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"


def s3_location(spec: str, env: Mapping[str, str]) -> S3Location:
    """The location ``s3://bucket/prefix``, on the server ``RELAIS_BAGS_S3_ENDPOINT`` with its keys
    (``RELAIS_BAGS_S3_ACCESS_KEY``, ``RELAIS_BAGS_S3_SECRET_KEY``), by default the vault's own S3 server."""
    parts = urlsplit(spec)
    if parts.scheme != "s3" or not parts.netloc:
        raise TargetError(f"{spec!r}: expected s3://<bucket>/<prefix>")
    prefix = parts.path.lstrip("/")
    if prefix and not prefix.endswith("/"):
        prefix += "/"

    def var(name: str) -> str:
        return (env.get(f"RELAIS_BAGS_S3_{name}") or env.get(f"RELAIS_VAULT_S3_{name}") or "").strip()

    url = var("ENDPOINT")
    if not url:
        raise TargetError(f"{spec}: no S3 server: set RELAIS_BAGS_S3_ENDPOINT (or RELAIS_VAULT_S3_ENDPOINT) and "
                          "its keys")
    missing = [f"RELAIS_BAGS_S3_{n}" for n in ("ACCESS_KEY", "SECRET_KEY") if not var(n)]
    if missing:
        raise TargetError(f"{spec}: {' and '.join(missing)} not set (nor the vault's RELAIS_VAULT_S3_ ones)")
    return S3Location(parts.netloc, prefix, url.rstrip("/"), var("ACCESS_KEY"), var("SECRET_KEY"))


class S3Target:
    """Bags under an S3 prefix, through the minio client (imported only when used)."""

    def __init__(self, loc: S3Location) -> None:
        from minio import Minio

        self.loc, self.where = loc, loc.where
        url = urlsplit(loc.url)
        self.client = Minio(url.netloc, access_key=loc.access_key, secret_key=loc.secret_key,
                            secure=url.scheme == "https")
        with self._errors("opening bucket", loc.bucket):
            if not self.client.bucket_exists(loc.bucket):
                self.client.make_bucket(loc.bucket)

    def _errors(self, doing: str, what: str) -> AbstractContextManager[None]:
        return _s3_errors(self.loc, doing, what)

    def key(self, name: str, rel: str = "") -> str:
        return f"{self.loc.prefix}{name}/{rel}"

    def names(self) -> list[str]:
        found = []
        with self._errors("listing", self.loc.where):
            for o in self.client.list_objects(self.loc.bucket, prefix=self.loc.prefix, recursive=True):
                rest = o.object_name[len(self.loc.prefix):]
                name, _, rel = rest.partition("/")
                if rel == TAGMANIFEST:
                    found.append(name)
        return sorted(found)

    def reader(self, name: str) -> BagReader | None:
        reader = _S3Reader(self, name)
        return reader if TAGMANIFEST in reader.files() else None

    def writer(self, name: str) -> BagWriter:
        return _S3Writer(self, name)


@contextmanager
def _s3_errors(loc: S3Location, doing: str, what: str) -> Iterator[None]:
    """S3 failures as TargetError naming the server (no credentials), what was done and on what."""
    import urllib3.exceptions
    from minio.error import S3Error

    try:
        yield
    except S3Error as exc:
        raise TargetError(f"S3 {loc.url} refused {doing} {what}: {exc.code}: {exc.message}") from None
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise TargetError(f"S3 {loc.url} unreachable while {doing} {what}: {type(exc).__name__}: "
                          f"{str(exc)[:200]}") from None


class _S3Reader:
    def __init__(self, target: S3Target, name: str) -> None:
        self.t, self.name, self.where = target, name, f"{target.where}{name}/"
        self._files: dict[str, int] | None = None

    def files(self) -> dict[str, int]:
        if self._files is None:
            prefix = self.t.key(self.name)
            with self.t._errors("listing", self.where):
                self._files = {o.object_name[len(prefix):]: int(o.size or 0) for o in self.t.client.list_objects(
                    self.t.loc.bucket, prefix=prefix, recursive=True)}
        return self._files

    def chunks(self, rel: str) -> Iterator[bytes]:
        with self.t._errors("reading", f"{self.where}{rel}"):
            resp = self.t.client.get_object(self.t.loc.bucket, self.t.key(self.name, rel))
            try:
                yield from resp.stream(CHUNK)
            finally:
                resp.close()
                resp.release_conn()

    def close(self) -> None:
        pass


class _S3Writer:
    def __init__(self, target: S3Target, name: str) -> None:
        self.t, self.name = target, name
        old = _S3Reader(target, name).files()
        with target._errors("removing the partial bag", f"{target.where}{name}/"):
            for rel in old:  # a partial bag, or the whole one being replaced: written again from scratch
                target.client.remove_object(target.loc.bucket, target.key(name, rel))

    def add(self, rel: str, chunks: Iterable[bytes], size: int) -> tuple[str, int]:
        stream = ChunkStream(chunks)
        with self.t._errors("writing", f"{self.t.where}{self.name}/{rel}"):
            self.t.client.put_object(self.t.loc.bucket, self.t.key(self.name, rel), cast(BinaryIO, stream), size)
        stream.drain()  # bytes beyond the size announced change the hash: caught by the caller
        return stream.sha256, stream.size

    def commit(self) -> None:
        pass  # the tag manifest, written last, made it whole

    def abort(self) -> None:
        pass  # left partial (no tag manifest): the next run removes it and writes it again


def open_target(spec: str, *, zip_: bool = False, env: Mapping[str, str] | None = None) -> BagTarget:
    """The bags' place named by ``spec``: a folder (``zip_``: a folder of zips) or ``s3://bucket/prefix``."""
    if spec.startswith("s3://"):
        if zip_:
            raise TargetError("--zip writes a folder of zips: give a folder, not an S3 prefix")
        return S3Target(s3_location(spec, os.environ if env is None else env))
    root = Path(spec)
    if root.exists() and not root.is_dir():
        raise TargetError(f"{spec}: not a folder")
    return ZipTarget(root) if zip_ else FolderTarget(root)

"""The two interfaces a connector implements: :class:`Exporter` and :class:`Importer`.

An exporter reads one vertical of a source, owner by owner; an importer writes one vertical
of a target. A vendor implements the few abstract methods; the base classes add what every
connector needs the same way: walking pages, downloading with hashing on the fly and
checking what the source announced, bounded retries, concurrency, input checks, reports.

Threading: :meth:`Exporter.open` and :meth:`Importer.write` must be safe to call from
several threads at once (:meth:`Exporter.fetch_many` does). :class:`HttpClient` is.
"""
from __future__ import annotations

import enum
import hashlib
import logging
import os
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

from .errors import BadItem, ChecksumMismatch, ConnectorError, TransientError
from .items import (
    KINDS,
    BytesContent,
    Content,
    FileContent,
    Item,
    ItemRef,
    check_path,
    check_vertical,
    ref_label,
)
from .retry import RetryPolicy, call_with_retries
from .schemas import check_record
from .sync import ETAG, Changes, diff_listing

T = TypeVar("T")
log = logging.getLogger("connectors")

#: Content up to this size stays in memory after a download; larger goes to a spool file.
MEMORY_LIMIT = 1 << 20


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a listing. ``next_cursor`` is None on the last page.

    Cursors are opaque strings, stable across processes: an export can write one in its
    checkpoint and resume the listing from it after a crash.
    """

    items: list[T]
    next_cursor: str | None = None


@dataclass(slots=True)
class Body:
    """An item's bytes as the source sends them, with what it announced about them."""

    chunks: Iterable[bytes]
    size: int | None = None  # e.g. Content-Length
    sha256: str | None = None  # e.g. from Repr-Digest / Digest / OC-Checksum
    url: str | None = None  # where it came from (redacted), for errors
    close: Callable[[], None] = lambda: None


@dataclass(slots=True)
class Fetched:
    """One result of :meth:`Exporter.fetch_many`: the item, or the error that stopped it."""

    ref: ItemRef
    item: Item | None = None
    error: ConnectorError | None = None


class Exporter(ABC):
    """Reads one vertical of a source. Implement :meth:`owners`, :meth:`list` and :meth:`open`."""

    def __init__(self, connector: str, vertical: str, *, retry: RetryPolicy | None = None) -> None:
        self.connector = connector
        self.vertical = check_vertical(vertical)
        self.retry = retry or RetryPolicy()

    # -- what a connector implements -----------------------------------------------------
    @abstractmethod
    def owners(self, cursor: str | None = None) -> Page[str]:
        """The owners (persons) that have data in this vertical at the source."""

    @abstractmethod
    def list(self, owner: str, cursor: str | None = None) -> Page[ItemRef]:
        """One page of an owner's items. Folders come before what they contain."""

    @abstractmethod
    def open(self, ref: ItemRef) -> Body:
        """Start reading a file item's bytes. Transient failures raise :class:`TransientError`."""

    def describe(self, ref: ItemRef, content: Content) -> dict[str, Any]:
        """The item's metadata once its content is known (default: the listing's).

        Override when metadata comes from the bytes (an iCalendar UID, say)."""
        return dict(ref.metadata)

    def close(self) -> None:  # noqa: B027 - optional: a connector holding nothing need not override it
        """Release connections."""

    #: How :meth:`changes` finds what changed (:mod:`connectors.sdk.sync`); a connector that
    #: overrides it with the server's own change tracking adds ``"sync-collection"``.
    sync_modes: tuple[str, ...] = (ETAG,)

    def changes(self, owner: str, state: dict[str, Any] | None = None) -> Changes:
        """What changed for ``owner`` since ``state`` (None: the first time, everything is new).
        Default: the whole listing, compared by ETag (:func:`connectors.sdk.sync.diff_listing`)."""
        return diff_listing(self.iter_refs(owner), state)

    # -- what every connector gets ---------------------------------------------------------
    def iter_owners(self) -> Iterator[str]:
        cursor: str | None = None
        while True:
            page = self.owners(cursor)
            yield from page.items
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def iter_refs(self, owner: str, cursor: str | None = None) -> Iterator[ItemRef]:
        while True:
            page = self.list(owner, cursor)
            yield from page.items
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def fetch(self, ref: ItemRef, *, spool_dir: Path | None = None,
              memory_limit: int = MEMORY_LIMIT) -> Item:
        """Download one item, hashing as it comes, and check it against what the source announced.

        The bytes stay in memory up to ``memory_limit`` and go to a spool file in ``spool_dir``
        beyond (release it with ``item.content.release()``). A body cut off mid-way or one
        that does not match its announced size or sha256 is downloaded again, within the
        retry policy; after that, :class:`RetriesExhausted` names the connector, URL and item,
        with the last :class:`ChecksumMismatch` or :class:`TransientError` in ``.last``.
        """
        label = ref_label(ref)
        if ref.kind == "folder":
            content: Content = BytesContent(b"")
        else:
            def attempt() -> Content:
                body = self.open(ref)
                try:
                    return _spool(body, ref, self.connector, spool_dir, memory_limit)
                finally:
                    body.close()

            try:
                content = call_with_retries(attempt, self.retry, what=f"fetch {label}",
                                            retry_on=(TransientError, ChecksumMismatch))
            except ConnectorError as exc:
                exc.with_context(connector=self.connector, item=label)
                raise
        return Item(owner=ref.owner, vertical=ref.vertical, id=ref.id, path=ref.path, content=content,
                    kind=ref.kind, metadata=self.describe(ref, content))

    def export(self, owner: str, **fetch_kw: Any) -> Iterator[Item]:
        """Every item of ``owner``, one after another (see :meth:`fetch_many` for speed)."""
        for ref in self.iter_refs(owner):
            yield self.fetch(ref, **fetch_kw)

    def fetch_many(self, refs: Iterable[ItemRef], *, workers: int = 8, spool_dir: Path | None = None,
                   memory_limit: int = MEMORY_LIMIT) -> Iterator[Fetched]:
        """Download many items on ``workers`` threads; yields each as it completes.

        At most ``2 * workers`` downloads are under way or waiting to be taken, so memory and
        spool space stay bounded whatever the number of refs. A failed item is yielded with
        its error; the others go on.
        """
        if workers < 1:
            raise ValueError("workers must be at least 1")
        it = iter(refs)
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"{self.connector}-fetch") as pool:
            running: dict[Future, ItemRef] = {}

            def fill() -> None:
                while len(running) < 2 * workers:
                    ref = next(it, None)
                    if ref is None:
                        return
                    running[pool.submit(self.fetch, ref, spool_dir=spool_dir, memory_limit=memory_limit)] = ref

            try:
                fill()
                while running:
                    done, _ = wait(running, return_when=FIRST_COMPLETED)
                    for fut in done:
                        ref = running.pop(fut)
                        exc = fut.exception()
                        if exc is None:
                            yield Fetched(ref, item=fut.result())
                        elif isinstance(exc, ConnectorError):
                            yield Fetched(ref, error=exc)
                        else:
                            raise exc
                    fill()
            finally:
                for fut in running:
                    fut.cancel()


def _spool(body: Body, ref: ItemRef, connector: str, spool_dir: Path | None, memory_limit: int) -> Content:
    h = hashlib.sha256()
    size = 0
    buf = bytearray()
    spool = None
    try:
        for chunk in body.chunks:
            h.update(chunk)
            size += len(chunk)
            if spool is None and size > memory_limit:
                spool = tempfile.NamedTemporaryFile(dir=spool_dir, prefix="relais-fetch-", delete=False)
                spool.write(buf)
                buf = bytearray()
            if spool is None:
                buf += chunk
            else:
                spool.write(chunk)
        digest = h.hexdigest()
        label = ref_label(ref)
        expected_size = body.size if body.size is not None else ref.size
        if expected_size is not None and expected_size != size:
            raise ChecksumMismatch(f"announced {expected_size} bytes but sent {size}", expected=str(expected_size),
                                   actual=str(size), connector=connector, url=body.url, item=label)
        expected = body.sha256 or ref.sha256
        if expected is not None and expected != digest:
            raise ChecksumMismatch(f"announced sha256 {expected} but the bytes sent hash to {digest}",
                                   expected=expected, actual=digest, connector=connector, url=body.url, item=label)
        if spool is None:
            content = BytesContent(bytes(buf))
            return content
        spool.close()
        out = FileContent(Path(spool.name), sha256=digest, size=size, verified=True, delete=True)
        spool = None
        return out
    finally:
        if spool is not None:
            spool.close()
            os.unlink(spool.name)


class Outcome(str, enum.Enum):  # noqa: UP042 - a StrEnum's str() would be 'created', not 'Outcome.CREATED'
    """What an import did to one item. Re-running an import gives ``unchanged`` everywhere."""

    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"


@dataclass
class ImportReport:
    """Counts per outcome, and each failure with its item and reason (for ``--json``)."""

    connector: str
    vertical: str
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    failures: list[dict[str, str]] = field(default_factory=list)

    def add(self, outcome: Outcome) -> None:
        setattr(self, outcome.value, getattr(self, outcome.value) + 1)

    @property
    def failed(self) -> int:
        return len(self.failures)

    @property
    def total(self) -> int:
        return self.created + self.updated + self.unchanged + self.failed

    def to_dict(self) -> dict[str, Any]:
        return {"connector": self.connector, "vertical": self.vertical, "created": self.created,
                "updated": self.updated, "unchanged": self.unchanged, "failed": self.failed,
                "failures": list(self.failures)}


class Importer(ABC):
    """Writes one vertical of a target. Implement :meth:`write`; call :meth:`put`.

    :meth:`write` must be idempotent: writing an item the target already holds, with the
    same bytes and metadata, changes nothing and returns ``Outcome.UNCHANGED``; an item is
    found again by its id (never duplicated under another name).
    """

    def __init__(self, connector: str, vertical: str) -> None:
        self.connector = connector
        self.vertical = check_vertical(vertical)

    @abstractmethod
    def write(self, item: Item) -> Outcome:
        """Create or update ``item`` at the target (parents created as needed)."""

    def close(self) -> None:  # noqa: B027 - optional: a connector holding nothing need not override it
        """Release connections."""

    def check(self, item: Item) -> None:
        """Refuse a bad item before anything is written: :class:`BadItem` says what and which."""
        label = f"{item.owner}:{item.vertical}/{item.id}"
        try:
            if item.vertical != self.vertical:
                raise BadItem(f"is a {item.vertical!r} item; this importer writes {self.vertical!r}")
            if not item.owner or "/" in item.owner:
                raise BadItem(f"owner {item.owner!r} must be a non-empty name without '/'")
            if check_path(item.id) != item.id:
                raise BadItem("id is not in Unicode NFC")
            if check_path(item.path, "path") != item.path:
                raise BadItem("path is not in Unicode NFC")
            if item.kind not in KINDS:
                raise BadItem(f"kind {item.kind!r} is not one of {', '.join(KINDS)}")
            if item.kind == "folder" and item.size != 0:
                raise BadItem("a folder item carries no content")
            item.content.verify("content")
            check_record(item.vertical, item.record())
        except BadItem as exc:
            exc.with_context(connector=self.connector, item=label)
            raise

    def put(self, item: Item) -> Outcome:
        """Check then write one item; errors name the connector and the item."""
        self.check(item)
        try:
            return self.write(item)
        except ConnectorError as exc:
            exc.with_context(connector=self.connector, item=f"{item.owner}:{item.vertical}/{item.id}")
            raise

    def import_items(self, items: Iterable[Item], *, stop_on_error: bool = False,
                     progress: Callable[[Item, Outcome | None, ConnectorError | None], None] | None = None
                     ) -> ImportReport:
        """Put every item; a failed item is reported (or raised with ``stop_on_error``) and the rest go on."""
        report = ImportReport(self.connector, self.vertical)
        for item in items:
            try:
                outcome = self.put(item)
            except ConnectorError as exc:
                if stop_on_error:
                    raise
                report.failures.append({"item": f"{item.owner}:{item.vertical}/{item.id}", "error": str(exc)})
                log.warning("%s", exc)
                if progress:
                    progress(item, None, exc)
                continue
            report.add(outcome)
            if progress:
                progress(item, outcome, None)
        return report

"""Which blobs go when index rows are deleted (an erasure, a purge): those no remaining row references.

A blob is content, stored once per tenant by sha256, that rows of several persons may share (a
worksheet handed to a class). Deleting rows deletes a blob only when no row of the tenant
references it any more: shared blobs stay. The sizes reported are each blob's bytes, once.
"""
from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class BlobsToDelete:
    digests: list[str]  # in order
    kept: int  # blobs of the deleted rows still referenced by other rows
    bytes: int  # of the blobs deleted


def content_sizes(rows: Iterable[tuple[str | None, int | None]]) -> dict[str, int]:
    """Each content the deleted rows (digest, size) reference, once, with its size (tombstones have none)."""
    sizes: dict[str, int] = {}
    for digest, size in rows:
        if digest is not None:
            sizes[digest] = max(sizes.get(digest, 0), size or 0)
    return sizes


def blobs_to_delete(sizes: Mapping[str, int], still_referenced: Collection[str]) -> BlobsToDelete:
    """Of the contents the deleted rows referenced (`content_sizes`), those no remaining row references."""
    doomed = sorted(set(sizes) - set(still_referenced))
    return BlobsToDelete(doomed, len(set(sizes) & set(still_referenced)), sum(sizes[d] for d in doomed))

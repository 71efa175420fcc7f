"""What an import run may do and how: the options every step of it reads, and its progress callback."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..adapters.aaf.file_names import FileInfo


@dataclass(frozen=True)
class ImportOptions:
    force: bool = False  # apply a Complet's deletions even when they are a mass deletion (rules/mass_deletion.py)
    max_delete_share: float = 0.10
    batch_size: int = 500  # per parser batch: bounds the memory in flight between processes
    validate_events: bool = False  # tests validate every event; the bulk path trusts the model
    workers: int = 1  # > 1 parses files in worker processes while this one writes
    chunk_bytes: int = 1 << 20  # with workers: files are parsed in pieces of about this size


ProgressFn = Callable[[FileInfo, int], None]
"""Called with a file and the number of records just applied from it."""

"""Parsing files in worker processes while the importing process writes.

Parsing and preparing records is pure CPU (`batches.py`); the database work
is not. Files are cut into pieces of about `chunk_bytes` (`adapters/aaf/pieces.py`) and piece t of
the run goes to worker t % workers, which streams its prepared batches
through a bounded queue (memory stays flat). The importing process reads the
pieces back in order, so every worker stays busy however the records are
spread over files. A file in one piece that breaks comes back as the same
`AafFileError` an in-process parse would raise; a piece of a larger file that
does not parse comes back as `ChunkUnreadable`, and the importer reads that
file whole itself.
"""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Iterator, Sequence
from multiprocessing.process import BaseProcess
from multiprocessing.queues import Queue
from typing import Any

from relais.db import make_engine
from relais.ops.logs import format_exception

from ..adapters.aaf.file_names import FileInfo
from ..adapters.aaf.pieces import ChunkUnreadable, FileChunks
from ..adapters.aaf.reader import AafFileError
from .batches import Batch, prepared_batches
from .events import EventMaker
from .stored import stored_hashes

_DONE, _BATCH, _FILE_ERROR, _UNREADABLE, _CRASH = "done", "batch", "file-error", "unreadable", "crash"


def _worker(tasks: list[tuple[str, int]], chunk_bytes: int, batch_size: int, database_url: str, tenant: str,
            import_id: str, queue: Queue) -> None:
    # Its own read-only view of the database, as committed before this run.
    try:
        conn = make_engine(database_url).connect()
        lookup = stored_hashes(conn)
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which raises (no traceback on stderr)
        queue.put((_CRASH, format_exception(exc)))
        return
    events = EventMaker(tenant, import_id)
    chunks: FileChunks | None = None
    for path, index in tasks:
        if chunks is None or str(chunks.path) != path:
            if chunks is not None:
                chunks.close()
            chunks = FileChunks(path, chunk_bytes)
        try:
            for batch in prepared_batches(chunks.elements(index), batch_size, lookup, events):
                queue.put((_BATCH, batch))
            queue.put((_DONE, None))
        except AafFileError as exc:
            queue.put((_FILE_ERROR, (exc.line, exc.reason)))
        except ChunkUnreadable as exc:
            queue.put((_UNREADABLE, str(exc)))
        except BaseException as exc:  # noqa: BLE001 - reported to the parent, which raises
            queue.put((_CRASH, format_exception(exc)))  # without what a database error quotes of the data
            return


def parallel_sources(
    infos: Sequence[FileInfo], batch_size: int, workers: int, chunk_bytes: int, database_url: str, tenant: str,
    import_id: str,
) -> Iterator[tuple[FileInfo, Iterator[Batch]]]:
    """Each file with its batches, parsed by `workers` processes; the processes end with the iteration."""
    ctx = mp.get_context("spawn")
    pieces = [FileChunks.count_for(i.path, chunk_bytes) for i in infos]
    tasks = [(str(info.path), j) for info, n in zip(infos, pieces, strict=True) for j in range(n)]
    workers = max(1, min(workers, len(tasks)))
    queues = [ctx.Queue(maxsize=4) for _ in range(workers)]
    procs = [
        ctx.Process(
            target=_worker,
            args=(tasks[w::workers], chunk_bytes, batch_size, database_url, tenant, import_id, queues[w]),
            daemon=True,
            name=f"relais-aaf-parser-{w}",
        )
        for w in range(workers)
    ]
    for p in procs:
        p.start()
    try:
        first = 0
        for info, n in zip(infos, pieces, strict=True):
            yield info, _file_batches(info, range(first, first + n), queues, procs)
            first += n
    finally:
        for p in procs:
            if p.is_alive():
                p.terminate()
            p.join(timeout=5)


def _file_batches(info: FileInfo, task_ids: range, queues: Sequence[Queue],
                  procs: Sequence[BaseProcess]) -> Iterator[Batch]:
    """The file's batches, piece after piece; every piece is consumed even when one fails."""
    failure: Exception | None = None
    for t in task_ids:
        for tag, value in _piece(info, queues[t % len(queues)], procs[t % len(procs)]):
            if failure is not None:
                continue
            if tag == _BATCH:
                yield value
            elif tag == _FILE_ERROR:
                line, reason = value
                failure = AafFileError(info.path, reason, line)
            elif tag == _UNREADABLE:
                failure = ChunkUnreadable(value)
    if failure is not None:
        raise failure


def _piece(info: FileInfo, queue: Queue, proc: BaseProcess) -> Iterator[tuple[str, Any]]:
    """What a worker sent for one piece, up to and including its end."""
    while True:
        try:
            tag, value = queue.get(timeout=5)
        except Exception:  # queue.Empty: check the worker is still there
            if not proc.is_alive():
                raise RuntimeError(f"the parser process for {info.path} died (exit code {proc.exitcode})") from None
            continue
        if tag == _CRASH:
            crash = RuntimeError(f"the parser process failed on {info.path}: {value.rsplit(chr(10), 1)[-1]}")
            crash.add_note(f"The parser process's traceback:\n{value}")  # shown by `relais --debug`
            raise crash
        yield tag, value
        if tag != _BATCH:
            return

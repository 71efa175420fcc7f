"""Parsing files in worker processes while the importing process writes.

Parsing and preparing records is pure CPU; the database work is not. With
`workers` processes, file i is parsed by worker i % workers, which streams its
prepared batches through a bounded queue (memory stays flat), and the
importing process reads the files back in their order. A file that breaks
comes back as the same `AafFileError` an in-process parse would raise.
"""

from __future__ import annotations

import multiprocessing as mp
import traceback
from collections.abc import Iterator, Sequence

from .aaf import AafFileError, FileInfo

_DONE, _BATCH, _FILE_ERROR, _CRASH = "done", "batch", "file-error", "crash"


def _worker(paths: list[str], batch_size: int, database_url: str, tenant: str, import_id: str, queue) -> None:
    from pathlib import Path

    from relais.db import make_engine

    from .importer import EventMaker, prepared_batches, stored_hashes

    # Its own read-only view of the database, as committed before this run.
    conn = make_engine(database_url).connect()
    lookup = stored_hashes(conn)
    events = EventMaker(tenant, import_id)
    for path in paths:
        try:
            for batch in prepared_batches(Path(path), batch_size, lookup, events):
                queue.put((_BATCH, batch))
            queue.put((_DONE, None))
        except AafFileError as exc:
            queue.put((_FILE_ERROR, (exc.line, exc.reason)))
        except BaseException:  # noqa: BLE001 - reported to the parent, which raises
            queue.put((_CRASH, traceback.format_exc()))
            return


def parallel_sources(
    infos: Sequence[FileInfo], batch_size: int, workers: int, database_url: str, tenant: str, import_id: str
) -> Iterator[tuple[FileInfo, Iterator]]:
    ctx = mp.get_context("spawn")
    workers = max(1, min(workers, len(infos)))
    queues = [ctx.Queue(maxsize=4) for _ in range(workers)]
    procs = [
        ctx.Process(
            target=_worker,
            args=([str(i.path) for i in infos[w::workers]], batch_size, database_url, tenant, import_id, queues[w]),
            daemon=True,
            name=f"relais-aaf-parser-{w}",
        )
        for w in range(workers)
    ]
    for p in procs:
        p.start()
    try:
        for index, info in enumerate(infos):
            yield info, _batches_from(queues[index % workers], info, procs[index % workers])
    finally:
        for p in procs:
            if p.is_alive():
                p.terminate()
            p.join(timeout=5)


def _batches_from(queue, info: FileInfo, proc) -> Iterator[list]:
    while True:
        try:
            tag, value = queue.get(timeout=5)
        except Exception:  # queue.Empty: check the worker is still there
            if not proc.is_alive():
                raise RuntimeError(f"the parser process for {info.path} died (exit code {proc.exitcode})")
            continue
        if tag == _BATCH:
            yield value
        elif tag == _DONE:
            return
        elif tag == _FILE_ERROR:
            line, reason = value
            raise AafFileError(info.path, reason, line)
        else:
            raise RuntimeError(f"the parser process failed on {info.path}:\n{value}")

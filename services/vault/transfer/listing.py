"""Persons' listings fetched ahead, on their own threads, so the workers never wait for one.

A connector lists a person's items page by page (a WebDAV server: one folder per request),
which takes round trips; :func:`listings_ahead` keeps the next few persons' listings under way
while the caller works on the current one, and hands them over in order.
"""
from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Generator, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

from connectors.sdk import ConnectorError, Exporter, ItemRef, NotFound

log = logging.getLogger("relais.vault.transfer")

T = TypeVar("T")

LISTERS, AHEAD = 2, 6  # threads listing, and how many persons' listings may be under way or waiting

Listing = tuple[list[ItemRef], str | None]  # the person's items, and why the listing stopped early


def list_person(exporter: Exporter, person: str) -> Listing:
    """Every item of ``person``; a listing that fails keeps what it got and says why.
    A person the source does not know has nothing (no error)."""
    refs: list[ItemRef] = []
    try:
        for ref in exporter.iter_refs(person):
            refs.append(ref)
    except NotFound:
        log.info("person %s has no %s at %s", person, exporter.vertical, exporter.connector)
    except ConnectorError as exc:
        return refs, str(exc)
    except Exception as exc:  # noqa: BLE001 - a connector choking on garbage must not stop the others
        return refs, f"{exporter.connector}: cannot list: {type(exc).__name__}: {exc}"
    return refs, None


def listings_ahead(exporter: Exporter, persons: Iterable[str], *, skip: Callable[[str], bool] = lambda p: False,
                   listers: int = LISTERS, ahead: int = AHEAD) -> Generator[tuple[str, Future[Listing]], None, None]:
    """``(person, future of their Listing)`` in the order of ``persons``, the next ones being listed
    meanwhile; persons for which ``skip`` is true are not listed. An error iterating ``persons``
    (the source's list of owners) is raised when reached."""
    return done_ahead(lambda person: list_person(exporter, person), persons, skip=skip, threads=listers,
                      ahead=ahead, name="vault-list")


def done_ahead(work: Callable[[str], T], persons: Iterable[str], *, skip: Callable[[str], bool] = lambda p: False,
               threads: int, ahead: int, name: str) -> Generator[tuple[str, Future[T]], None, None]:
    """``(person, future of work(person))`` in the order of ``persons``, up to ``ahead`` of them under way or
    waiting on ``threads`` threads (named ``name``); persons for which ``skip`` is true are left out. Futures
    not handed over when the caller stops are cancelled."""
    it = iter(persons)
    queued: deque[tuple[str, Future[T]]] = deque()
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix=name) as pool:
        try:
            exhausted = False
            while True:
                while not exhausted and len(queued) < ahead:
                    person = next(it, None)
                    if person is None:
                        exhausted = True
                    elif not skip(person):
                        queued.append((person, pool.submit(work, person)))
                if not queued:
                    return
                yield queued.popleft()
        finally:
            for _, fut in queued:
                fut.cancel()

"""Unit tests: the pure rules, alone. Nothing here may reach a network, a database or another process.

Every test under tests/unit runs with sockets, database engines and subprocesses
refused (`no_io`), so a rule that starts doing I/O fails its tests instead of
quietly becoming an integration test. They need no service running:
`.venv/bin/python -m pytest tests/unit` runs in seconds.
"""

from __future__ import annotations

import socket
import subprocess

import pytest
import sqlalchemy


class IOAttempted(AssertionError):
    """A unit test (or the rule it tests) tried to do I/O."""


def _refuse(what: str):
    def refuse(*_args, **_kwargs):
        raise IOAttempted(f"a unit test tried to {what}: pure rules do no I/O (move the test to its service's folder)")
    return refuse


@pytest.fixture(autouse=True)
def no_io(monkeypatch):
    monkeypatch.setattr(socket.socket, "connect", _refuse("open a network connection"))
    monkeypatch.setattr(socket, "create_connection", _refuse("open a network connection"))
    monkeypatch.setattr(sqlalchemy, "create_engine", _refuse("make a database engine"))
    monkeypatch.setattr(subprocess, "Popen", _refuse("start a process"))

"""What `relais serve directory` runs: the directory's RPC queries and its outbox relay.

The RPC methods (answered through nameko, `rpc-directory`) are the `Directory`
facade's own methods, run as they are; imports run from the command line
(`relais directory import`), and their events leave through the relay.
"""

from __future__ import annotations

from relais.runtime import Context, Parts, Process

from .api import Directory

RPC = ("get_person", "find_pupils", "find_parents", "find_by_ine", "find_by_email", "members", "children",
       "legal_guardians", "get_structure")


def start(ctx: Context[None]) -> Parts:
    directory = Directory(ctx.engine, ctx.settings.tenant)
    return Parts(rpc={name: getattr(directory, name) for name in RPC})


PROCESS: Process[None] = Process(service="directory", start=start, readiness=("broker", "database"), rpc=RPC)

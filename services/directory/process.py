"""What `relais serve directory` runs: the directory's RPC queries and its outbox relay.

The RPC methods (answered through nameko, `rpc-directory`) are the `Directory`
facade's own methods, run as they are; imports run from the command line
(`relais directory import`), and their events leave through the relay.

Who may call each method (`RPC`), by the broker user RabbitMQ checked: the SSO, the
methods of its directory port (`services/sso/directory_port.py`: matching a national
identity, CAS and SAML attributes); the operator (`relais rpc`), every one.

It also consumes erasure requests (`relais.q.directory-subject`, `subject.py`), confirmed through the relay.
"""

from __future__ import annotations

from relais.runtime import OPERATOR, Context, Parts, Process, RpcMethod

from . import subject
from .api import Directory

SSO_AND_OPERATOR = RpcMethod(callers=("sso", OPERATOR))
OPERATOR_ONLY = RpcMethod(callers=(OPERATOR,))

RPC: dict[str, RpcMethod] = {
    "get_person": SSO_AND_OPERATOR,
    "find_pupils": SSO_AND_OPERATOR,
    "find_parents": SSO_AND_OPERATOR,
    "find_by_email": SSO_AND_OPERATOR,
    "children": SSO_AND_OPERATOR,
    "get_structure": SSO_AND_OPERATOR,
    "find_by_ine": OPERATOR_ONLY,
    "members": OPERATOR_ONLY,
    "legal_guardians": OPERATOR_ONLY,
}


def start(ctx: Context[None]) -> Parts:
    directory = Directory(ctx.engine, ctx.settings.tenant)
    return Parts(rpc={name: getattr(directory, name) for name in RPC},
                 consumers=[subject.consumer(ctx.settings.tenant)])  # erasure requests (relais.subject)


PROCESS: Process[None] = Process(service="directory", start=start, readiness=("broker", "database"), rpc=RPC)

"""What `relais serve console` runs: the operator console's web pages, on RELAIS_HTTP_HOST:RELAIS_HTTP_PORT
(default 127.0.0.1:8440), behind a TLS-terminating proxy, with the probes /healthz and /readyz; served
like every Relais HTTP service (relais/ops/server.py). No consumer, no relay, no broker.

What it needs of the other services (`Ports`: the directory's queries, provisioning's desk, the stack's
status) the composition root hands in (`app/bootstrap.py`).
"""

from __future__ import annotations

from relais.ops.server import HttpConfigError, http_address
from relais.runtime import Context, Http, Parts, Process, StartError

from .entrypoints.http import make_app
from .handlers.desk import Desk
from .ports import Ports
from .settings import ConsoleConfigError, ConsoleSettings

DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 8440


def start(ctx: Context[Ports]) -> Parts:
    try:
        settings = ConsoleSettings.from_env()
        host, port = http_address(DEFAULT_HOST, DEFAULT_PORT)
    except (ConsoleConfigError, HttpConfigError) as exc:
        raise StartError(str(exc)) from None
    desk = Desk(ctx.engine, ctx.ports, settings.policy, settings.cas_validate_url, settings.timeout_s)
    return Parts(http=Http(make_app(ctx.engine, desk, settings), host, port,
                           describe=f"console on http://{host}:{port}/ (signs in through {settings.cas_url})"))


PROCESS: Process[Ports] = Process(service="console", start=start, readiness=("database",), relay=False)

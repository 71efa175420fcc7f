"""Every service, and what each gets from the others: the only module that wires services together.

`PROCESSES` holds each service's process declarations (`services/<name>/process.py`; provisioning
has two: its consumer, and `provisioning-api`, its HTTP APIs);
`ports(name, settings, engine)` builds what that service needs of the others: the SSO reads
people from the directory, through the directory's query facade over the same database
(`services.sso.process.Ports`); the operator console reads the directory the same way, asks
provisioning through its desk (`services.provisioning.desk`) and the stack's state as `relais
status` does (`services.console.ports.Ports`).
"""

from __future__ import annotations

import os
from typing import Any

from sqlalchemy import Connection, Engine

from relais.bus.contracts import subscriptions
from relais.config import Settings
from relais.runtime import Process
from services.console.ports import Ports as ConsolePorts
from services.console.process import PROCESS as CONSOLE
from services.directory.adapters.queries import last_import_run
from services.directory.api import Directory
from services.directory.process import PROCESS as DIRECTORY
from services.provisioning.desk import ProvisioningDesk
from services.provisioning.process import API_PROCESS as PROVISIONING_API
from services.provisioning.process import PROCESS as PROVISIONING
from services.sso.desk import SsoDesk
from services.sso.process import PROCESS as SSO
from services.sso.process import Ports as SsoPorts
from services.usage.desk import UsageDesk
from services.usage.process import PROCESS as USAGE
from services.usage.settings import UsageSettings
from services.vault.desk import VaultDesk
from services.vault.process import PROCESS as VAULT

PROCESSES: dict[str, Process[Any]] = {p.service: p for p in (CONSOLE, DIRECTORY, PROVISIONING, PROVISIONING_API, SSO,
                                                              USAGE, VAULT)}


def ports(service: str, settings: Settings, engine: Engine) -> Any:
    """What `service` needs of the other services (None: nothing)."""
    if service == "sso":
        return SsoPorts(directory=Directory(engine, settings.tenant))
    if service == "console":
        return ConsolePorts(directory=Directory(engine, settings.tenant),
                            provisioning=ProvisioningDesk(engine, settings.tenant),
                            status=lambda: stack_status(settings),
                            usage=UsageDesk(engine, settings.tenant, UsageSettings.from_env().threshold),
                            sso=SsoDesk(engine, os.environ.get("RELAIS_SSO_CONFIG")),
                            vault=VaultDesk(engine, settings.tenant))
    return None


def stack_status(settings: Settings) -> dict[str, Any]:
    """What `relais status --json` reports (RELAIS_RABBITMQ_API, RELAIS_OPS_ENDPOINTS), for the console's Health."""
    from relais.runtime.status import DEFAULT_RABBITMQ_API, gather, parse_endpoints

    return gather(settings, rabbitmq_api=os.environ.get("RELAIS_RABBITMQ_API") or DEFAULT_RABBITMQ_API,
                  ops=parse_endpoints(()), services=service_queues(), last_import=directory_last_import, timeout=3.0)


def service_queues() -> dict[str, str | None]:
    """Per service, the queue whose consumers show it runs (`relais status`): its RPC queue, else its
    consumer queue, else None (an HTTP service, seen only through its ops endpoint)."""
    consumers = subscriptions()
    return {name: f"rpc-{name}" if process.rpc else f"relais.q.{name}" if name in consumers else None
            for name, process in PROCESSES.items()}


def directory_last_import(conn: Connection) -> dict[str, Any] | None:
    """The last directory import's id, status and times, for `relais status`."""
    return last_import_run(conn)

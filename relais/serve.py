"""`relais serve SERVICE` (`python -m relais.serve SERVICE`): run one service in the foreground.

| service | runtime | readiness checks |
|---|---|---|
| `directory` | nameko (eventlet): RPC queries + outbox relay | broker, database |
| `provisioning` | threads: directory-event consumer + outbox relay | broker, database |
| `sso` | HTTP (werkzeug, threads): CAS + SAML, `RELAIS_SSO_CONFIG`; outbox relay | database |
| `vault` | nameko (eventlet) | broker, database, object store |

Each one logs as `RELAIS_LOG_FORMAT` says (relais/ops/logs.py), serves
`/healthz`, `/readyz` and `/metrics` on `RELAIS_OPS_PORT` (default 9100), and
stops on SIGTERM or SIGINT.

Nameko services need eventlet to patch the standard library before anything
else imports it, so this module imports only `sys` and `os` at the top and
patches first when the service asked for runs under nameko. Everything else
is imported once that is done.
"""

import os
import sys

# service -> (runtime, "module:attribute", readiness checks, whether it relays an outbox)
# runtime "nameko": the attribute is a nameko service class, run by a ServiceRunner under eventlet;
# runtime "process": the attribute is a function that runs until SIGTERM and returns an exit status.
SERVICES: dict[str, tuple[str, str, tuple[str, ...], bool]] = {
    "directory": ("nameko", "services.directory.service:DirectoryService", ("broker", "database"), True),
    "provisioning": ("process", "services.provisioning.service:main", ("broker", "database"), True),
    "sso": ("process", "relais.serve:run_sso", ("database",), True),
    "vault": ("nameko", "services.vault.service:VaultService", ("broker", "database", "object_store"), True),
}


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in SERVICES:
        print(f"usage: relais serve {{{'|'.join(SERVICES)}}}", file=sys.stderr)
        return 2
    service = argv[0]
    runtime, target, checks, relays = SERVICES[service]
    if runtime == "nameko":
        import warnings

        # Its multi-line banner would break JSON log lines; STACK_NOTES.md item 8 records the deprecation.
        warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")
        import eventlet

        eventlet.monkey_patch()
    from relais.ops.logs import LogConfigError, configure_logging
    from relais.ops.server import OpsConfigError

    try:
        configure_logging(service)
        entry = _load(target)
        ops = _start_ops(service, checks, relays, blocking=runtime == "nameko")
    except (LogConfigError, OpsConfigError, LookupError) as exc:
        print(f"relais serve {service}: {exc}", file=sys.stderr)
        return 2
    try:
        if runtime == "nameko":
            return _run_nameko(entry)
        import signal

        # Until the service installs its own handlers (after migrations, say), SIGTERM stops it cleanly.
        signal.signal(signal.SIGTERM, _interrupt)
        try:
            return int(entry() or 0)
        except KeyboardInterrupt:
            return 0
    finally:
        ops.stop()


def _interrupt(*_) -> None:
    raise KeyboardInterrupt


def _load(target: str):
    """The attribute `module:name`; LookupError naming what is missing."""
    import importlib

    module_name, attr = target.split(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise LookupError(f"{module_name} is not in this build (no module {exc.name})") from None
        raise
    try:
        return getattr(module, attr)
    except AttributeError:
        raise LookupError(f"{module_name} defines no {attr}") from None


def _start_ops(service: str, names: tuple[str, ...], relays: bool, *, blocking: bool):
    """The ops endpoints of this process, on RELAIS_OPS_HOST:RELAIS_OPS_PORT.

    Under eventlet (`blocking`), database calls block the hub: they run in its thread pool.
    """
    from relais.config import Settings
    from relais.ops import health, metrics
    from relais.ops.server import OpsApp, serve_ops

    settings = Settings.from_env()
    offload = _tpool() if blocking else (lambda fn: fn())
    checks: dict[str, health.Check] = {}
    for name in names:
        if name == "broker":
            checks[name] = health.broker_check(settings.amqp_uri)
        elif name == "database":
            database = health.database_check(settings.database_url)
            checks[name] = lambda: offload(database)
        elif name == "object_store":
            checks[name] = health.object_store_check(vault_store_target(settings))
    metrics.set_service(service)
    if relays:
        from relais.db import make_engine

        metrics.watch_outbox(make_engine(settings.database_url), run=offload)
    return serve_ops(OpsApp(service, checks))


def vault_store_target(settings) -> str:
    """Where the vault keeps blobs, for its readiness: `RELAIS_VAULT_S3_ENDPOINT` (an S3/MinIO URL),
    else the embedded local store `$RELAIS_DATA_DIR/vault` (services/vault/settings.py)."""
    from relais.ops.server import OpsConfigError
    from services.vault.settings import VaultConfigError, VaultSettings

    try:
        return VaultSettings.from_env(settings=settings).store_target
    except VaultConfigError as exc:
        raise OpsConfigError(str(exc)) from None


def _tpool():
    from eventlet import tpool

    return tpool.execute


def _run_nameko(service_cls) -> int:
    import signal

    import eventlet
    from nameko.runners import ServiceRunner

    from relais.config import Settings

    runner = ServiceRunner({"AMQP_URI": Settings.from_env().amqp_uri})
    runner.add_service(service_cls)
    # Signal handlers run in the main loop and cannot use eventlet primitives:
    # stop from a greenlet, once.
    stopping = []

    def shutdown(*_):
        if not stopping:
            stopping.append(True)
            eventlet.spawn_n(runner.stop)

    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)
    runner.start()
    eventlet.spawn(runner.wait).wait()
    return 0


def run_sso() -> int:
    """`relais sso serve` with its configuration from RELAIS_SSO_CONFIG, and its address from
    RELAIS_HTTP_HOST / RELAIS_HTTP_PORT when set (else its defaults: 127.0.0.1:8430), beside a
    relay of the sso's outbox (its login and logout events), so they reach the bus even when
    the sso has a database of its own. The broker being down does not stop logins: events wait."""
    import threading

    import relais.cli  # noqa: F401 - first: it registers the services' commands, sso's among them
    from services.sso.cli import serve

    stop = threading.Event()
    relay = threading.Thread(target=_relay_outbox, args=(stop,), name="outbox-relay", daemon=True)
    relay.start()
    # SIGTERM raises KeyboardInterrupt (see main): the server's loop stops on it and closes the application.
    args = []
    for option, variable in (("--host", "RELAIS_HTTP_HOST"), ("--port", "RELAIS_HTTP_PORT")):
        if os.environ.get(variable):
            args += [option, os.environ[variable]]
    try:
        serve.main(args, prog_name="relais serve sso", standalone_mode=True)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        stop.set()
        relay.join(timeout=10)
    return 0


def _relay_outbox(stop, interval: float = 1.0) -> None:
    """Publish the outbox every `interval` seconds until `stop` is set (one relay at a time per database)."""
    import logging

    from relais.bus.outbox import OutboxRelay
    from relais.bus.publisher import ConfirmedPublisher, PublishError
    from relais.config import Settings
    from relais.db import make_engine
    from relais.ops.logs import describe_error

    log = logging.getLogger("relais.serve")
    settings = Settings.from_env()
    engine = make_engine(settings.database_url)  # migrated by the service as it starts
    relay = OutboxRelay(engine, lambda: ConfirmedPublisher(settings.amqp_uri))
    try:
        while not stop.wait(interval):
            try:
                relay.drain()
            except PublishError as exc:
                log.warning("outbox relay: %s (the events wait in the outbox)", exc)
            except Exception as exc:  # noqa: BLE001 - a busy or restarting database: try again next time
                log.warning("outbox relay: %s; will retry", describe_error(exc))
    finally:
        relay.close()
        engine.dispose()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""`python -m app.serve NAME [--rpc]`: run one service in the foreground (what `relais serve NAME` execs).

A service that answers RPC runs a second process for it, `python -m app.serve NAME --rpc`, which
the first starts and watches (`relais.runtime.rpc_process`): nameko needs eventlet, which must
patch the standard library before anything else imports it, so this module imports only `sys`
before deciding; the main process stays unpatched.
"""

import sys

USAGE = "usage: python -m app.serve SERVICE [--rpc]"


def main(argv: list[str]) -> int:
    names = [a for a in argv if not a.startswith("--")]
    flags = set(argv) - set(names)
    if len(names) != 1 or not flags <= {"--rpc"}:
        print(USAGE, file=sys.stderr)
        return 2
    rpc = "--rpc" in flags
    if rpc:
        import warnings

        # Its multi-line banner would break JSON log lines (eventlet is deprecated, and still nameko's runtime).
        warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")
        import eventlet

        eventlet.monkey_patch()
    from relais.config import Settings
    from relais.db import make_engine
    from relais.ops.failures import explain
    from relais.runtime.runner import run

    from .bootstrap import PROCESSES, ports

    process = PROCESSES.get(names[0])
    if process is None:
        print(f"relais serve: no service {names[0]!r} (one of {', '.join(sorted(PROCESSES))})", file=sys.stderr)
        return 2
    settings = Settings.from_env()
    try:
        engine = make_engine(settings.database_url)
    except (OSError, ValueError) as exc:  # a SQLite folder that cannot be made, RELAIS_SQLITE_BUSY_TIMEOUT
        print(explain(exc, settings).render(f"relais serve {process.service}"), file=sys.stderr)
        return 1
    try:
        if rpc:
            from relais.runtime.rpc import serve  # nameko and eventlet: the RPC process only

            return serve(process, settings, engine, ports(process.service, settings, engine))
        return run(process, settings, engine, ports(process.service, settings, engine),
                   rpc_command=[sys.executable, "-m", "app.serve", process.service, "--rpc"])
    finally:
        engine.dispose()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""`python -m relais.serve SERVICE`: run one service under nameko.

eventlet must patch the standard library before anything else imports it.
"""

import eventlet

eventlet.monkey_patch()

import signal  # noqa: E402
import sys  # noqa: E402

from nameko.runners import ServiceRunner  # noqa: E402

from relais.config import Settings  # noqa: E402

SERVICES = {
    "directory": "services.directory.service:DirectoryService",
}


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in SERVICES:
        print(f"usage: python -m relais.serve {{{'|'.join(SERVICES)}}}", file=sys.stderr)
        return 2
    module, cls = SERVICES[argv[0]].split(":")
    service = getattr(__import__(module, fromlist=[cls]), cls)
    runner = ServiceRunner({"AMQP_URI": Settings.from_env().amqp_uri})
    runner.add_service(service)
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


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

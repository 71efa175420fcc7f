"""`python -m relais.runtime.call SERVICE METHOD [JSON_ARG ...]`: call a running service, print JSON.

Used by `relais rpc` and the demo, as the broker user of RELAIS_AMQP_URI (in a deployment the
operator's, which the service checks: deploy/broker-users.md). nameko's client needs eventlet patched
first, hence a module of its own.
"""

import eventlet

eventlet.monkey_patch()

import json  # noqa: E402
import sys  # noqa: E402

import amqp  # noqa: E402
from nameko.exceptions import RemoteError  # noqa: E402

from relais.config import Settings  # noqa: E402
from relais.runtime.rpc import RpcClient  # noqa: E402


def _arg(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print("usage: python -m relais.runtime.call SERVICE METHOD [ARG ...]  (args as JSON, or plain strings)",
              file=sys.stderr)
        return 2
    service, method, *args = argv
    try:
        with RpcClient(Settings.from_env().amqp_uri, timeout=30) as services:
            result = getattr(services[service], method)(*map(_arg, args))
    except RemoteError as exc:  # raised by the method, or its refusal of the caller (RpcRefused)
        print(f"relais rpc {service} {method}: {exc.exc_type}: {exc.value}", file=sys.stderr)
        return 1
    except amqp.exceptions.AccessRefused as exc:  # the broker's permissions: this user may not call it
        print(f"relais rpc {service} {method}: RabbitMQ refused the call: {exc.reply_text}", file=sys.stderr)
        return 1
    print(json.dumps(result, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

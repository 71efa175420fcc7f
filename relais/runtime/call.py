"""`python -m relais.runtime.call SERVICE METHOD [ARG ...]`: call a running service, print JSON.

Used by `relais rpc` and the demo, as the broker user of RELAIS_AMQP_URI (in a deployment the
operator's, which the service checks: deploy/broker-users.md). nameko's client needs eventlet patched
first, hence a module of its own. Arguments are strings as written; `json:`
asks for another type (`call_args`).
"""

import eventlet

eventlet.monkey_patch()

import json  # noqa: E402
import sys  # noqa: E402

import amqp  # noqa: E402
from nameko.exceptions import BadRequest, RemoteError, RpcTimeout, UnknownService  # noqa: E402

from relais.config import Settings  # noqa: E402
from relais.runtime.call_args import SYNTAX, CallArgumentError, call_arguments  # noqa: E402
from relais.runtime.rpc import RpcClient  # noqa: E402

TIMEOUT = 30


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(f"usage: python -m relais.runtime.call SERVICE METHOD [ARG ...]\n{SYNTAX}", file=sys.stderr)
        return 2
    service, method, *texts = argv
    try:
        args = call_arguments(texts)
    except CallArgumentError as exc:
        print(f"relais rpc {service} {method}: {exc}\n{SYNTAX}", file=sys.stderr)
        return 2
    try:
        with RpcClient(Settings.from_env().amqp_uri, timeout=TIMEOUT) as services:
            result = getattr(services[service], method)(*args)
    except RemoteError as exc:  # raised by the method, or its refusal of the caller (RpcRefused)
        print(f"relais rpc {service} {method}: {exc.exc_type}: {exc.value}", file=sys.stderr)
        return 1
    except BadRequest as exc:  # nameko's refusal: no such method, arguments that do not fit it
        print(f"relais rpc {service} {method}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    except amqp.exceptions.AccessRefused as exc:  # the broker's permissions: this user may not call it
        print(f"relais rpc {service} {method}: RabbitMQ refused the call: {exc.reply_text}", file=sys.stderr)
        return 1
    except (UnknownService, RpcTimeout):
        print(f"relais rpc {service} {method}: no answer within {TIMEOUT} s: is `relais serve {service}` running "
              "on this broker vhost?", file=sys.stderr)
        return 1
    print(json.dumps(result, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

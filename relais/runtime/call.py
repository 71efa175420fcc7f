"""`python -m relais.runtime.call SERVICE METHOD [JSON_ARG ...]`: call a running service, print JSON.

Used by `relais rpc` and the demo. nameko's client needs eventlet patched
first, hence a module of its own.
"""

import eventlet

eventlet.monkey_patch()

import json  # noqa: E402
import sys  # noqa: E402

from nameko.standalone.rpc import ClusterRpcProxy  # noqa: E402

from relais.config import Settings  # noqa: E402


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
    with ClusterRpcProxy({"AMQP_URI": Settings.from_env().amqp_uri}, timeout=30) as cluster:
        result = getattr(getattr(cluster, service), method)(*map(_arg, args))
    print(json.dumps(result, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

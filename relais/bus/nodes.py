"""Which node of a RabbitMQ cluster to connect to, and in what order to try the others.

`RELAIS_AMQP_URI` may list a cluster's nodes, separated by commas (`relais.config.amqp_nodes`).
Every client of the bus (the publisher, the consumers) tries them in turn, starting from the one
this process reached last; after losing a node, from the one after it, so a node that is gone
(stopped, crashed, cut off: its connect may take the whole timeout) is tried last, not first, by
each reconnection. The memory is per process and per URI: a new publisher, which the outbox relay
makes after each failure, starts where the last one left off.
"""

from __future__ import annotations

import threading

import amqp

from relais.config import AmqpParams, amqp_nodes

_lock = threading.Lock()
_first: dict[str, int] = {}  # RELAIS_AMQP_URI -> index of the node to try first


def in_turn(amqp_uri: str) -> list[AmqpParams]:
    """The nodes of `amqp_uri`, in the order to try them."""
    nodes = amqp_nodes(amqp_uri)
    with _lock:
        start = _first.get(amqp_uri, 0) % len(nodes)
    return list(nodes[start:] + nodes[:start])


def reached(amqp_uri: str, node: AmqpParams) -> None:
    """`node` answered: try it first next time."""
    nodes = amqp_nodes(amqp_uri)
    with _lock:
        _first[amqp_uri] = nodes.index(node)


def lost(amqp_uri: str, node: AmqpParams) -> None:
    """The connection to `node` was lost or refused: try the next node first next time."""
    nodes = amqp_nodes(amqp_uri)
    with _lock:
        if _first.get(amqp_uri, 0) % len(nodes) == nodes.index(node):
            _first[amqp_uri] = (nodes.index(node) + 1) % len(nodes)


def connect(amqp_uri: str, **kwargs) -> tuple[amqp.Connection, AmqpParams]:
    """A py-amqp connection, opened, to the first node of `amqp_uri` that answers, and that node.

    With one node, what connecting to it raised; with several, ConnectionError (an OSError, which the
    runner's consumers reconnect on) naming every node tried and why, when none answers.
    """
    nodes = in_turn(amqp_uri)
    if len(nodes) == 1:
        conn = amqp.Connection(**nodes[0].connection_kwargs(), **kwargs)
        conn.connect()
        return conn, nodes[0]
    failures: list[str] = []
    for node in nodes:
        conn = amqp.Connection(**node.connection_kwargs(), **kwargs)
        try:
            conn.connect()
        except (OSError, amqp.exceptions.AMQPError) as exc:
            try:
                conn.collect()
            except Exception:  # noqa: BLE001 - releasing a connection that never opened
                pass
            lost(amqp_uri, node)
            failures.append(f"{node.hostport}: {exc!r}")
            continue
        reached(amqp_uri, node)
        return conn, node
    raise ConnectionError(f"no node of the RabbitMQ cluster answers ({'; '.join(failures)})")

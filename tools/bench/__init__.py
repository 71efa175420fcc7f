"""The benchmarks: `make bench-<service>` runs `python -m tools.bench.<service>`; each prints one JSON line last,
measuring Relais and the raw floor in the same run."""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine


def empty(engine: Engine) -> None:
    """A clean slate on PostgreSQL: the benchmark owns the database it is given (--database-url says so)."""
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public")


def fresh_engine(database_url: str | None, workdir: Path) -> Engine:
    """A migrated, empty database: `database_url` emptied, else a new SQLite file in `workdir` (emptied too)."""
    import shutil

    from relais.db import make_engine, upgrade

    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    engine = make_engine(database_url or f"sqlite:///{(workdir / 'relais.db').resolve()}")
    empty(engine)
    upgrade(engine)
    return engine


@contextmanager
def consumer_vhost(consumer: str) -> Iterator[str]:
    """A RabbitMQ vhost of its own, with `consumer`'s queues and `bench.floor` declared; its AMQP URI. Deleted after.

    RELAIS_BENCH_AMQP_BASE (default amqp://guest:guest@127.0.0.1:5672) and RELAIS_BENCH_RABBITMQ_API say where.
    """
    import os
    import uuid

    import amqp

    from relais.bus.contracts import subscriptions
    from relais.bus.topology import declare_consumer
    from relais.config import parse_amqp_uri
    from tools.bench.directory import _management

    vhost = f"relais_bench_{uuid.uuid4().hex[:8]}"
    _management("PUT", f"/api/vhosts/{vhost}")
    _management("PUT", f"/api/permissions/{vhost}/guest", {"configure": ".*", "write": ".*", "read": ".*"})
    uri = f"{os.environ.get('RELAIS_BENCH_AMQP_BASE', 'amqp://guest:guest@127.0.0.1:5672')}/{vhost}"
    try:
        conn = amqp.Connection(**parse_amqp_uri(uri).connection_kwargs())
        conn.connect()
        declare_consumer(conn.channel(), consumer, list(subscriptions()[consumer]))
        conn.channel().queue_declare("bench.floor", durable=True, auto_delete=False)
        conn.close()
        yield uri
    finally:
        _management("DELETE", f"/api/vhosts/{vhost}")


def floor_consume(amqp_uri: str, queue: str, n: int, each: Callable[[bytes], object] | None = None) -> float:
    """The bare floor: py-amqp consuming n messages (`each` called on each body), acked in batches; seconds."""
    import time

    import amqp

    from relais.config import parse_amqp_uri

    conn = amqp.Connection(**parse_amqp_uri(amqp_uri).connection_kwargs())
    conn.connect()
    ch = conn.channel()
    ch.basic_qos(0, 400, False)
    got = [0]

    def on(m):
        if each is not None:
            each(m.body)
        got[0] += 1
        if got[0] % 200 == 0 or got[0] == n:
            ch.basic_ack(m.delivery_tag, multiple=True)

    ch.basic_consume(queue, callback=on)
    t = time.perf_counter()
    while got[0] < n:
        conn.drain_events(timeout=30)
    elapsed = time.perf_counter() - t
    conn.close()
    return elapsed

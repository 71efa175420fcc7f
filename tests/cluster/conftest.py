"""A three-node RabbitMQ cluster for the module's tests (`rabbit_cluster.RabbitCluster`), stopped and removed after.

Skipped only when RabbitMQ is not installed on this machine. These tests are slow (the cluster alone
takes some 25 s to start on a 2-core machine): `make test-cluster` runs them, `make test` leaves them out.
"""

from __future__ import annotations

import warnings

import pytest

from .rabbit_cluster import SERVER, RabbitCluster, installed


@pytest.fixture(scope="module")
def rabbit_cluster():
    if not installed():
        pytest.skip(f"RabbitMQ is not installed ({SERVER} or erl missing): the cluster tests start three nodes of it")
    try:
        cluster = RabbitCluster(size=3).start()
    except RuntimeError as first:  # a port taken meanwhile by another process of this shared machine: once more
        try:
            cluster = RabbitCluster(size=3).start()
        except RuntimeError as second:
            raise RuntimeError(f"the cluster did not start, twice:\n{first}\n--- then:\n{second}") from None
        warnings.warn(f"the RabbitMQ cluster started at the second try; the first failed: {first}", stacklevel=1)
    try:
        yield cluster
    finally:
        cluster.stop()

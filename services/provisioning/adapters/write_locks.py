"""The locks that keep grants right when several provisioning processes write at once (PostgreSQL).

Two consumers (`relais serve provisioning` on two hosts), an operator's `relais provisioning load`
and a manager's `relais provisioning grant` may write to one database at the same time. Without
locks, two things go wrong:

- **seats**: a quota is checked against the licences held, counted when a unit of work first needs
  them (`licence_pools.LicencePools`). Two transactions counting one pool before either commits
  would both give its last seat (issue 17: a per-structure licence held by 4 schools out of 2).
  `count_seats_in_turn` makes them count one after the other: the second counts once the first
  has committed, and sees its grants.
- **the configuration**: a unit of work reads the catalogue and the rules once, at its start. A load
  committed meanwhile (a rule removed, a quota lowered) would be undone by grants decided on the
  old ones; and a full evaluation writing the grant a consumer is writing would fail on the
  duplicate. Reconciling some accounts holds the configuration shared (`read_configuration`);
  loading it or evaluating every account holds it exclusively (`change_configuration`): a load
  waits for the reconciliations in flight, and the next ones wait for the load.

Both are advisory locks held until the transaction ends (commit or rollback), taken before the
first read they protect: under READ COMMITTED, PostgreSQL's default and ours, every statement after
them sees what the holder before committed. SQLite needs neither: a writing transaction holds the
database's write lock from its start (`relais.db`).
"""

from __future__ import annotations

from sqlalchemy import Connection, text

LOCK_CLASS = 0x50524F56  # "PROV": the first key of provisioning's advisory locks
CONFIGURATION, SEATS = 1, 2  # the second key


def read_configuration(conn: Connection) -> None:
    """Hold the catalogue and rules as they are until this transaction ends (others may read them too)."""
    _lock(conn, CONFIGURATION, "pg_advisory_xact_lock_shared")


def change_configuration(conn: Connection) -> None:
    """Hold the catalogue and rules for this transaction alone: no reconciliation runs until it ends."""
    _lock(conn, CONFIGURATION, "pg_advisory_xact_lock")


def count_seats_in_turn(conn: Connection) -> None:
    """Hold the licence counts of every limited pool until this transaction ends (one holder at a time)."""
    _lock(conn, SEATS, "pg_advisory_xact_lock")


def _lock(conn: Connection, key: int, function: str) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(text(f"SELECT {function}(:c, :k)"), {"c": LOCK_CLASS, "k": key})

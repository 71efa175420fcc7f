"""The benchmarks: `make bench-<service>` runs `python -m tools.bench.<service>`; each prints one JSON line last,
measuring Relais and the raw floor in the same run."""

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

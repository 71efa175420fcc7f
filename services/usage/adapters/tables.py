"""The usage service's tables (migration 0018_usage).

While a period is open:
- `usage_period`: one row per period, holding its pseudonym key (destroyed, set NULL, when the
  period closes) and the count of events that arrived after it closed;
- `usage_activity`: who did what, as pseudonyms: per day, kind (session or visit), pseudonym,
  structure, profile, level and resource, how many times. Deleted when the period closes.
Always:
- `usage_licence`: licences held now, per structure and resource (no person);
- `usage_quota`: times a licence pool refused grants, per day, structure and resource;
- `usage_aggregate`: a closed period's indicators, per grain, start, indicator and dimensions
  (`*`: all), exact counts; disclosure control applies when a report is made from them;
- `usage_release`: the privacy budget spent by each differentially private release of a period.
"""

from __future__ import annotations

from sqlalchemy import (
    Column,
    Date,
    DateTime,
    Float,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)

metadata = MetaData()

PERIOD, KIND, NAME, RESOURCE = 7, 8, 64, 255

usage_period = Table(
    "usage_period", metadata,
    Column("tenant", String(63), primary_key=True),
    Column("period", String(PERIOD), primary_key=True),
    Column("pseudonym_key", LargeBinary(32)),
    Column("opened_at", DateTime(timezone=True), nullable=False),
    Column("closed_at", DateTime(timezone=True)),
    Column("late_events", Integer, nullable=False, server_default="0"),
)

usage_activity = Table(
    "usage_activity", metadata,
    Column("tenant", String(63), primary_key=True),
    Column("day", Date, primary_key=True),
    Column("kind", String(KIND), primary_key=True),
    Column("pseudonym", String(32), primary_key=True),
    Column("structure", String(NAME), primary_key=True),
    Column("profile", String(NAME), primary_key=True),
    Column("level", String(NAME), primary_key=True),
    Column("resource", String(RESOURCE), primary_key=True),
    Column("period", String(PERIOD), nullable=False, index=True),
    Column("week", Date, nullable=False),
    Column("count", Integer, nullable=False),
    sqlite_with_rowid=False,  # one b-tree instead of a row plus its key index (migration 0019)
)

usage_licence = Table(
    "usage_licence", metadata,
    Column("tenant", String(63), primary_key=True),
    Column("structure", String(NAME), primary_key=True),
    Column("resource", String(RESOURCE), primary_key=True),
    Column("held", Integer, nullable=False),
)

usage_quota = Table(
    "usage_quota", metadata,
    Column("tenant", String(63), primary_key=True),
    Column("day", Date, primary_key=True),
    Column("structure", String(NAME), primary_key=True),
    Column("resource", String(RESOURCE), primary_key=True),
    Column("count", Integer, nullable=False),
)

AGGREGATE_KEY = ("tenant", "period", "grain", "profile", "level", "resource", "structure", "start", "indicator")

usage_aggregate = Table(
    "usage_aggregate", metadata,
    Column("tenant", String(63), nullable=False),
    Column("period", String(PERIOD), nullable=False),
    Column("grain", String(5), nullable=False),
    Column("start", Date, nullable=False),
    Column("indicator", String(24), nullable=False),
    Column("structure", String(NAME), nullable=False),
    Column("profile", String(NAME), nullable=False),
    Column("level", String(NAME), nullable=False),
    Column("resource", String(RESOURCE), nullable=False),
    Column("value", Integer, nullable=False),
    # A report reads one grain, most often over every profile and level ("*"): they come first, so that it
    # seeks its cells instead of scanning the grain's (migration 0019).
    PrimaryKeyConstraint(*AGGREGATE_KEY, name="usage_aggregate_pkey"),
    sqlite_with_rowid=False,  # one b-tree instead of a row plus its key index (migration 0019)
)

usage_release = Table(
    "usage_release", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tenant", String(63), nullable=False),
    Column("period", String(PERIOD), nullable=False),
    Column("released_at", DateTime(timezone=True), nullable=False),
    Column("epsilon", Float, nullable=False),
    Column("what", Text, nullable=False),
)

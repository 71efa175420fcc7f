"""The directory's tables (SQLAlchemy Core). Schema changes go through relais/migrations."""

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

_ID = String(64)

structure = Table(
    "dir_structure", metadata,
    Column("jointure", _ID, primary_key=True),
    Column("uai", String(16), index=True),
    Column("raw_hash", String(32)),  # hash of the record's bytes as last imported
    Column("record_hash", String(32), nullable=False),
    Column("data", LargeBinary, nullable=False),  # {"record": Structure, "attributes": {...}}
)


def _reference_table(name: str) -> Table:
    """MEF and subjects: a code, the hashes, and the record."""
    return Table(
        name, metadata,
        Column("code", _ID, primary_key=True),
        Column("raw_hash", String(32)),
        Column("record_hash", String(32), nullable=False),
        Column("data", LargeBinary, nullable=False),
    )


mef = _reference_table("dir_mef")
subject = _reference_table("dir_subject")

person = Table(
    "dir_person", metadata,
    Column("jointure", _ID, primary_key=True),
    Column("category", String(16), nullable=False),
    Column("structure", _ID, index=True),  # attachment structure jointure
    Column("last_key", String(200), nullable=False),  # search_key(last name)
    Column("first_key", String(200), nullable=False),
    Column("email_key", String(254), index=True),
    Column("ine", String(16), index=True),
    Column("struct_rattach_id", String(32), index=True),
    Column("raw_hash", String(32)),  # hash of the record's bytes as last imported
    Column("record_hash", String(32), nullable=False),
    Column("data", LargeBinary, nullable=False),  # {"record": Person, "attributes": {...}}
)

# One row per membership of a person (see rules/canonical_records.membership_key), for lookups by
# structure, class, group or relative; the person's `data` holds the same list.
membership = Table(
    "dir_membership", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("person", _ID, nullable=False, index=True),
    Column("kind", String(16), nullable=False),
    Column("structure", _ID),
    Column("code", String(100)),
    Column("subject", String(32)),
    Column("other", _ID),  # the relative's jointure, for kind = relative
    Column("legal_guardian", Boolean),
    Index("ix_dir_membership_group", "structure", "kind", "code"),
    Index("ix_dir_membership_other", "other"),
)

# One row per import run; `report` is the JSON report.
import_run = Table(
    "dir_import", metadata,
    Column("id", String(36), primary_key=True),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True)),
    Column("status", String(16), nullable=False),
    Column("report", Text),
)

# Keys seen in the Complet files of the current run, to find who is absent.
seen = Table(
    "dir_import_seen", metadata,
    Column("import_id", String(36), primary_key=True),
    Column("family", String(16), primary_key=True),
    Column("key", _ID, primary_key=True),
)

# Persons erased on request (migration 0021_subject_requests), by keyed hash (relais/subject/keys.py): the
# next import that brings one back says so (`returned_*`), since the AAF still lists whom the directory forgot.
erased = Table(
    "dir_erased", metadata,
    Column("subject_hash", String(64), primary_key=True),
    Column("request_id", String(36), nullable=False),
    Column("erased_at", DateTime(timezone=True), nullable=False),
    Column("returned_at", DateTime(timezone=True)),
    Column("returned_import", String(36)),
)

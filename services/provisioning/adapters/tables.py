"""The provisioning service's tables (migrations 0003_provisioning, 0004_prov_tokens, 0005_scim, 0008_gar_feed,
0013_grant_without_rowid)."""

from sqlalchemy import (
    BigInteger,
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

# What the directory published, as provisioning needs it (fed by directory events).
structure = Table(
    "prov_structure", metadata,
    Column("jointure", _ID, primary_key=True),
    Column("uai", String(16), index=True),
    Column("data", LargeBinary, nullable=False),  # the directory Structure record
)
reference = Table(  # MEF and subject labels, for the GAR feed
    "prov_reference", metadata,
    Column("kind", String(8), primary_key=True),  # mef | subject
    Column("code", _ID, primary_key=True),
    Column("label", Text),
)
person = Table(
    "prov_person", metadata,
    Column("jointure", _ID, primary_key=True),
    Column("category", String(16), nullable=False),
    Column("data", LargeBinary, nullable=False),  # the directory Person record, without raw attributes
)

# What provisioning decides.
config = Table(  # the catalogue and the rule set, each one JSON document
    "prov_config", metadata,
    Column("name", String(32), primary_key=True),
    Column("data", LargeBinary, nullable=False),
)
grant = Table(
    "prov_grant", metadata,
    Column("person", _ID, primary_key=True),
    Column("resource", String(255), primary_key=True),
    Column("structure", String(16), primary_key=True),  # UAI
    Column("cause", String(160), nullable=False),  # rule:<id> | manual:<jointure>
    Column("granted_at", DateTime(timezone=True), nullable=False),
    Column("revoke_after", DateTime(timezone=True)),  # a departure's grace period runs
    Index("ix_prov_grant_pool", "resource", "structure"),
    sqlite_with_rowid=False,  # one b-tree instead of a row plus its key index (migration 0013)
)
history = Table(  # every grant, revocation and refusal with its cause: "why does this pupil have this?"
    "prov_history", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("person", _ID, nullable=False, index=True),
    Column("resource", String(255), nullable=False),
    Column("structure", String(16), nullable=False),
    Column("action", String(16), nullable=False),  # granted | revoked | refused | deferred | kept
    Column("cause", String(300), nullable=False),
)
refusal = Table(  # grants the rules call for that a quota refused, until granted or no longer wanted
    "prov_refusal", metadata,
    Column("person", _ID, primary_key=True),
    Column("resource", String(255), primary_key=True),
    Column("structure", String(16), primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("reason", String(300), nullable=False),
)

# Apps reading rosters (OneRoster, SCIM): bearer tokens from the OAuth 2.0 token endpoint.
token = Table(
    "prov_token", metadata,
    Column("token_sha256", String(64), primary_key=True),  # the token itself is never stored
    Column("app", String(128), nullable=False),
    Column("scopes", String(200), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False, index=True),
)

# What the last GAR feed of each ENT id held, so that the next one can be a delta.
gar_feed = Table(
    "prov_gar_feed", metadata,
    Column("ent_id", String(64), primary_key=True),
    Column("mode", String(8), nullable=False),  # Complet | Delta
    Column("written_at", DateTime(timezone=True), nullable=False),
    Column("records", Integer, nullable=False),
    Column("state", LargeBinary, nullable=False),  # (record key, fingerprint) pairs, 64-bit each
)

# SCIM resources an app created itself (migration 0005_scim): its own, invisible to every other app.
scim_resource = Table(
    "prov_scim_resource", metadata,
    Column("app", String(128), primary_key=True),
    Column("id", _ID, primary_key=True),
    Column("type", String(16), nullable=False),  # User | Group
    Column("data", LargeBinary, nullable=False),  # the SCIM JSON, without id and meta
    Column("version", Integer, nullable=False),
    Column("created", DateTime(timezone=True), nullable=False),
    Column("modified", DateTime(timezone=True), nullable=False),
)

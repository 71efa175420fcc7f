"""The SSO service's tables (migration 0006_sso).

Secrets (session ids, unconsumed tickets) are stored as SHA-256 digests: a
copy of the database does not let anyone resume a session or redeem a ticket.
"""

from sqlalchemy import Boolean, Column, DateTime, MetaData, String, Table, Text

metadata = MetaData()
_HASH = String(64)  # hex SHA-256

# One single sign-on session, shared by every instance of the service.
session = Table(
    "sso_session", metadata,
    Column("sid_sha256", _HASH, primary_key=True),
    Column("ref", String(32), nullable=False, unique=True),  # public handle for logs and events
    Column("person_jointure", String(64), nullable=False, index=True),
    Column("auth_source", String(64), nullable=False),  # e.g. educonnect | agents
    Column("national_id", String(255)),  # the NameID / FrEduCtId the national IdP gave
    Column("attributes", Text, nullable=False),  # JSON: the IdP's attributes
    Column("csrf_sha256", _HASH, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),  # = time of the last authentication
    Column("last_seen_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False, index=True),  # absolute end
)

# CAS tickets: ST (service), PT (proxy), PGT (proxy-granting). ST/PT are single-use.
ticket = Table(
    "sso_ticket", metadata,
    Column("ticket_sha256", _HASH, primary_key=True),
    Column("kind", String(4), nullable=False),  # ST | PT | PGT
    Column("service", Text, nullable=False),  # ST/PT: the service it was issued for; PGT: the pgtUrl
    Column("session_sha256", _HASH, nullable=False, index=True),
    Column("person_jointure", String(64), nullable=False),
    Column("renewed", Boolean, nullable=False),  # issued from a fresh authentication (renew=true)
    Column("proxies", Text, nullable=False),  # JSON list: the proxy chain, newest first
    Column("issued_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False, index=True),
    Column("consumed_at", DateTime(timezone=True)),
)

# Services a session logged into (validated a ticket), for back-channel single logout.
# The ticket is kept in clear here only after it was consumed: it is then worthless
# for validation and is the SessionIndex the service knows its session by.
session_service = Table(
    "sso_session_service", metadata,
    Column("session_sha256", _HASH, primary_key=True),
    Column("ticket", String(128), primary_key=True),
    Column("service", Text, nullable=False),
    Column("logged_in_at", DateTime(timezone=True), nullable=False),
)

# SAML assertion ids already accepted (replay cache, shared by every instance).
replay = Table(
    "sso_replay", metadata,
    Column("id", String(255), primary_key=True),
    Column("expires_at", DateTime(timezone=True), nullable=False, index=True),
)

"""The SAML SP's tables (migration 0009_sso_saml), shared by every instance of the service.

Pending requests live here rather than in one process's memory, so the instance
that receives the IdP's answer need not be the one that sent the request.
Browser bindings and choice tokens are stored as SHA-256 digests.
"""

from sqlalchemy import Boolean, Column, DateTime, MetaData, String, Table, Text

metadata = MetaData()
_HASH = String(64)

# AuthnRequests and LogoutRequests we sent, answered or not (until they expire).
request = Table(
    "sso_saml_request", metadata,
    Column("id", String(64), primary_key=True),  # the request's ID (the answer's InResponseTo)
    Column("kind", String(8), nullable=False),  # authn | logout
    Column("idp", String(64), nullable=False),  # the configured IdP it was sent to
    Column("browser_sha256", _HASH),  # authn: the browser that started the login (login CSRF)
    Column("next", Text),  # authn: the local path to go back to; logout: the return URL (FrEduUrlRetour)
    Column("force_authn", Boolean, nullable=False),
    Column("issued_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False, index=True),
    Column("answered_at", DateTime(timezone=True)),  # kept until it expires, so a replay is told as such
)

# A verified national login that matched several directory accounts, waiting for the user's choice.
choice = Table(
    "sso_saml_choice", metadata,
    Column("token_sha256", _HASH, primary_key=True),
    Column("browser_sha256", _HASH, nullable=False),
    Column("data", Text, nullable=False),  # JSON: the login (IdP, NameID, attributes) and the candidates
    Column("expires_at", DateTime(timezone=True), nullable=False, index=True),
)

# What the IdP knows an SSO session by, for single logout in both directions.
saml_session = Table(
    "sso_saml_session", metadata,
    Column("session_sha256", _HASH, primary_key=True),  # sso_session.sid_sha256
    Column("idp", String(64), nullable=False),
    Column("name_id", String(512), nullable=False),
    Column("name_id_format", String(255)),
    Column("name_qualifier", String(255)),
    Column("sp_name_qualifier", String(255)),
    Column("session_index", String(255)),
    Column("return_url", Text),  # EduConnect's FrEduUrlRetour, for after logout
    Column("expires_at", DateTime(timezone=True), nullable=False, index=True),
    # (idp, name_id) is indexed by the migration: IdP-initiated logout looks sessions up by it
)

# The last good copy of IdP metadata fetched from a URL (used when the URL is down at start).
metadata_cache = Table(
    "sso_saml_metadata", metadata,
    Column("idp", String(64), primary_key=True),
    Column("source", Text, nullable=False),
    Column("document", Text, nullable=False),
    Column("fetched_at", DateTime(timezone=True), nullable=False),
)

"""The SSO service's tables: sessions and CAS tickets (migration 0006_sso; the sessions' usage facts,
0017_sso_session_usage), the SAML SP's state (0009_sso_saml), the SAML IdP's secret record (0010_sso_idp).
Every instance of the service shares them.

Secrets (session ids, unconsumed tickets, browser bindings, choice tokens) are
stored as SHA-256 digests: a copy of the database does not let anyone resume a
session, redeem a ticket or finish someone else's login. Pending SAML requests
live here rather than in one process's memory, so the instance that receives
the IdP's answer need not be the one that sent the request.
"""

from sqlalchemy import Boolean, Column, DateTime, MetaData, String, Table, Text

metadata = MetaData()
_HASH = String(64)  # hex SHA-256

# -- sessions and CAS (0006_sso) ------------------------------------------------------------------

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
    # What the usage statistics count the session's events by (rules/usage_facts.py; 0017_sso_session_usage):
    # the person's national profile, the UAI the login was for, the pupil's MEF code. NULL: not known.
    Column("profile", String(64)),
    Column("structure", String(64)),
    Column("level", String(64)),
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

# -- the SAML SP's state (0009_sso_saml) ------------------------------------------------------------

# AuthnRequests and LogoutRequests we sent, answered or not (until they expire).
saml_request = Table(
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
saml_choice = Table(
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
saml_metadata = Table(
    "sso_saml_metadata", metadata,
    Column("idp", String(64), primary_key=True),
    Column("source", Text, nullable=False),
    Column("document", Text, nullable=False),
    Column("fetched_at", DateTime(timezone=True), nullable=False),
)

# -- the SAML IdP (0010_sso_idp) ---------------------------------------------------------------------

# Which deployment secret the pseudonymous NameIDs derive from (idp/nameid_secret.py): a changed secret is
# noticed instead of silently giving every person a new identity on every platform.
idp_secret = Table(
    "sso_idp_secret", metadata,
    Column("purpose", String(32), primary_key=True),  # "nameid": one row per deployment database
    Column("fingerprint", String(64), nullable=False),  # rules/pseudonyms.secret_fingerprint of the secret in use
    Column("since", DateTime(timezone=True), nullable=False),  # first NameID issued with it, or its acceptance
    Column("previous_fingerprint", String(64)),  # the secret it replaced, if an operator accepted a change
)

# -- the OpenID Connect provider (0022_sso_oidc) ----------------------------------------------------

# Authorization codes: one-time, SHA-256 at rest, a minute long. `grant` names the tokens issued from the code,
# so a code presented twice revokes them (RFC 6749 4.1.2).
oidc_code = Table(
    "sso_oidc_code", metadata,
    Column("code_sha256", _HASH, primary_key=True),
    Column("grant_id", String(32), nullable=False),
    Column("client", String(64), nullable=False),
    Column("session_sha256", _HASH, nullable=False),
    Column("session_ref", String(32), nullable=False),  # sso_session.ref: the ID token's `sid` derives from it
    Column("person_jointure", String(64), nullable=False),
    Column("redirect_uri", Text, nullable=False),
    Column("scope", Text, nullable=False),  # space-separated, as granted
    Column("nonce", Text),
    Column("code_challenge", String(128)),
    Column("code_challenge_method", String(8)),
    Column("auth_time", DateTime(timezone=True), nullable=False),  # the SSO session's login
    Column("issued_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False, index=True),
    Column("consumed_at", DateTime(timezone=True)),  # kept until it expires, so a second use is told as such
)

# Access and refresh tokens (opaque, SHA-256 at rest). A refresh token used once is `replaced_at` (rotation);
# presented again, its whole grant is revoked.
oidc_token = Table(
    "sso_oidc_token", metadata,
    Column("token_sha256", _HASH, primary_key=True),
    Column("kind", String(8), nullable=False),  # access | refresh
    Column("grant_id", String(32), nullable=False, index=True),
    Column("client", String(64), nullable=False),
    Column("session_sha256", _HASH, nullable=False),
    Column("session_ref", String(32), nullable=False, index=True),  # the tokens of a session that ended go
    Column("person_jointure", String(64), nullable=False),
    Column("scope", Text, nullable=False),
    Column("auth_time", DateTime(timezone=True), nullable=False),
    Column("issued_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False, index=True),
    Column("replaced_at", DateTime(timezone=True)),
    Column("revoked_at", DateTime(timezone=True)),
)

# The public keys that signed tokens, published in the JWKS until the last token they signed has expired, even
# once their key file is gone from the configuration (key rotation).
oidc_jwk = Table(
    "sso_oidc_jwk", metadata,
    Column("kid", String(128), primary_key=True),
    Column("jwk", Text, nullable=False),  # JSON: the public key only
    Column("published_until", DateTime(timezone=True), nullable=False),
)

"""The SAML IdP's table (migration 0010_sso_idp).

`sso_idp_secret` remembers which deployment secret the pseudonymous NameIDs are
derived from (by fingerprint, never the secret itself), so that a changed secret
is noticed instead of silently giving every person a new identity on every
platform (idp_store.py).
"""

from sqlalchemy import Column, DateTime, MetaData, String, Table

metadata = MetaData()

secret = Table(
    "sso_idp_secret", metadata,
    Column("purpose", String(32), primary_key=True),  # "nameid": one row per deployment database
    Column("fingerprint", String(64), nullable=False),  # pseudonyms.secret_fingerprint of the secret in use
    Column("since", DateTime(timezone=True), nullable=False),  # first NameID issued with it, or its acceptance
    Column("previous_fingerprint", String(64)),  # the secret it replaced, if an operator accepted a change
)

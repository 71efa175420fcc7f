"""The SSO's pure decisions: plain functions, no I/O (no database, network, files or clock), unit-tested alone.

- `account_matching.py`: which directory account a national identity is (FrEduCtRefId,
  FrEduVecteur, the academic e-mail), asked of the directory port;
- `national_attributes.py`: what the national IdPs' attributes are called, and the OIDs
  they travel under;
- `ent_attributes.py`: a person's ENT attributes (the AAF's `$` formats), and which of
  them a CAS application receives;
- `platform_attributes.py`: what the SAML IdP releases to a resource platform (ENT and
  GAR-style attributes), under which name;
- `pseudonyms.py`: a person's pseudonymous NameID on a platform, the SessionIndex a
  platform knows a session by, a secret's fingerprint;
- `service_registry.py`: which registered CAS service a URL belongs to (strict matching),
  and what it may do;
- `redirects.py`: where a browser may go after a login (local paths only) or a logout
  (FrEduUrlRetour, on the IdP's hosts);
- `renew_stamps.py`: whether a login is fresh enough for CAS `renew=true`;
- `session_lifetime.py`: when an SSO session ends (idle, or past its absolute end);
- `metadata_refresh.py`: when a trusted IdP's metadata is read again.
"""

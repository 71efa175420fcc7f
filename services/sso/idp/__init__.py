"""Our SAML identity provider towards resource platforms (GAR-like publishers' platforms).

- `config.py`, `platforms.py`: the `idp:` section, the registered platforms and their metadata;
- `messages.py`: our metadata, the requests we read, the responses we write;
- `nameid_secret.py`: which deployment secret the pseudonymous NameIDs derive from (and the guard on it);
- `flows.py`: the use cases (answer an AuthnRequest, open a platform, come back after login, log out);
- `http.py`: the `/idp/` endpoints.

Pseudonymous NameIDs: `rules/pseudonyms.py`; what a platform receives: `rules/platform_attributes.py`.
"""

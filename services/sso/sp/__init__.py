"""Our SAML service provider towards the national IdPs (ÉduConnect, the academic agents' IdP).

- `config.py`: the `saml:` section (our keys, the IdPs we trust);
- `trusted_idps.py`: the IdPs' metadata, read, verified, refreshed and kept;
- `messages.py`: our metadata, AuthnRequest, LogoutRequest/Response, and the logout messages we read;
- `response_checks.py`: every check an IdP's Response passes before anything is read from it;
- `store.py`: pending requests, the replay cache, account choices, the IdP session links;
- `flows.py`: the use cases (log in, choose an account, log out in both directions);
- `http.py`: the `/saml/` endpoints.

Which directory account a national identity is: `rules/account_matching.py`.
"""

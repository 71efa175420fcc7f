"""The OpenID Connect provider towards apps that speak neither CAS nor SAML (Moodle, Nextcloud, recent EdTech).

`config.py` the `oidc:` section; `keys.py` signing and the published JWKS; `store.py` codes and tokens in the
database; `flows.py` the use cases (authorize, token, userinfo, logout); `back_channel_logout.py` logout tokens to
clients; `http.py` the `/oidc/` endpoints. The pure decisions are in `rules/oidc.py`.
"""

"""Provisioning's HTTP APIs, for the apps that read rosters.

- `apps.py`: apps as OAuth 2.0 clients (hashed secrets, scopes, resources), their tokens, what each may see;
- `oauth.py`: `POST /oauth/token` (client credentials) and the bearer token check;
- `oneroster_view.py`: what one app may see, as OneRoster 1.2 entities;
- `oneroster_rest.py`: the OneRoster 1.2 rostering REST service;
- `scim.py`, `scim_sql.py`: the SCIM 2.0 service provider (scim2-models parses, validates and patches)
  and its filters as SQL;
- `wsgi.py`: the WSGI application that mounts them (`services.provisioning.api.wsgi:application`).
"""

"""The SSO service: pupils, parents and staff log in once, through the national identity providers, and
reach every ENT app (CAS) and every resource platform (SAML); sessions live in the database, shared by
every instance.

Three systems in one service, each in its own package with its HTTP side in `http.py`:

- `cas/`: the CAS server for the ENT's apps (tickets, validation, proxying, back-channel logout);
- `sp/`: our SAML service provider towards the national IdPs (EduConnect, the agents' IdP): login,
  account matching, single logout, the trusted IdPs' metadata;
- `idp/`: our SAML identity provider towards resource platforms: pseudonymous NameIDs, attribute release;
- `saml/`: what `sp/` and `idp/` share: safe XML parsing, keys, signatures, encryption, bindings,
  metadata reading, the checks of their configuration sections.

What all three share: `config.py` (the configuration's top level), `sessions.py` and `cookies.py` (SSO
sessions), `tables.py` (every table), `compiled_sql.py` (the login path's statements),
`directory_port.py` and `attribute_source.py` (person data from the directory), `events.py` (bus events),
`pages.py` (what people see), `lazy.py`, and `app.py` (the WSGI application mounting the three HTTP
sides). `rules/` holds the pure decisions; `process.py` is what `relais serve sso` runs and `cli.py` the
`relais sso …` commands. README.md tells the rest.
"""

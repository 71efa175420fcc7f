"""The provisioning service: which account gets which resource licence, why, within which quota; and the
feeds and APIs through which the GAR and apps learn of it.

- `grants/`: who gets which licence, and why: rules, causes, quotas, planning (pure, no I/O);
- `handlers/`: the use cases, on a database connection: the view of the directory fed by its events,
  reconciling grants, the full evaluation, loading the catalogue and rules, manual grants, explain;
- `adapters/`: its tables and the queries that load what the rules need;
- `feeds/`: the files it writes: the GAR feed, an app's OneRoster CSV bundle;
- `api/`: its HTTP APIs for apps: OAuth 2.0 token endpoint, OneRoster REST, SCIM (one WSGI app);
- `process.py`: what `relais serve provisioning` runs; `cli.py`: `relais provisioning …`.
"""

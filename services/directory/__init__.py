"""The directory: loads the academic directory (AAF exports) and answers who is who.

* `rules/` — its decisions, pure: AAF attributes to canonical records, profiles, relatives,
  fingerprints (unchanged means unchanged), import order, the Complet scope and the mass-deletion guard;
* `importing/` — the import use case: a run, its batches (in parser processes too), writing them,
  its events, the Complet sweep, the report;
* `adapters/` — its tables, its read-side queries, and reading AAF files (`adapters/aaf/`);
* `api.py` — the facade every entrypoint calls (its query methods are the RPC contract);
* `cli.py` — `relais directory …`;
* `process.py` — what `relais serve directory` runs.
"""

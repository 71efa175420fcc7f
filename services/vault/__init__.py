"""The vault: every user's ENT data kept outside the ENT, in an open format, so that a change of
vendor loses nothing (README.md says what it does and the rules it follows).

* `rules/` — the decisions, plain functions with no I/O: retention, changes, restore, erasure,
  blob deletion, the access log, item ids, item metadata;
* `adapters/` — the index in SQL and the blob stores (local folder, S3, metered);
* `continuous/` — continuous mode: the `ent.item.*` events and the consumer's handler;
* `archive/` — the open archive format: BagIt bags, a person's items packed and unpacked;
* `transfer/` — the contract end: export from the outgoing ENT, import into the incoming one, verify;
* `items.py` (`Vault`, one tenant's items), `rights.py` (erasure, retention, purge, access log),
  `item_version.py`, `settings.py`, `cli.py` (`relais vault …`), `process.py` (`relais serve vault`).
"""

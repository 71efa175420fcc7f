"""The vault's decisions, as plain functions: no database, store, broker, network, file or clock.

* `retention.py` — how long a deleted item stays restorable (the one default, 90 days; the
  tenant's own policy) and when its tombstone may be purged;
* `changes.py` — what a reported change does to an item: a new version, `unchanged` or `stale`;
* `restore.py` — which version a restore brings back;
* `erasure.py` — what an erasure removes and what its audit event says;
* `blob_deletion.py` — which blobs go when rows are deleted (erasure, purge): those nobody references;
* `access_log.py` — what the access log records, and forgets on erasure;
* `item_ids.py` — the verticals, and the item ids, person ids and paths the vault accepts;
* `item_metadata.py` — how an item's connector metadata and kind (file, folder) are kept.
"""

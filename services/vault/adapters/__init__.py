"""What the vault keeps things in: the index in SQL, and the tenant's blob store (local folder or S3).

* `tables.py` — the index's tables (item versions, tenant policy, access log);
* `index.py` — the queries on them, each in the caller's transaction, and the blob-deletion guard;
* `upsert.py` — INSERT … ON CONFLICT on PostgreSQL or SQLite;
* `blob_store.py` — the `BlobStore` protocol, its errors and the content-addressed key layout;
* `local_store.py` — `LocalStore`, blobs in a local folder; `s3_store.py` — `S3Store`, a bucket per tenant;
* `metered_store.py` — `MeteredBlobStore`, a store counting the bytes of new content (Prometheus).
"""

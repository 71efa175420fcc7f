"""What the directory reads and writes outside its rules.

* `tables.py` — its tables (SQLAlchemy Core; migrations in `relais/migrations/versions/`);
* `queries.py` — the read-side lookups other services need (by jointure, SIECLE id + UAI, e-mail...);
* `aaf/` — reading AAF exports: files in, records out.
"""

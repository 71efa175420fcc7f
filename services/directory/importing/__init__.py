"""Importing AAF exports: the directory's main use case.

* `run.py` — one run, from the files to the report: a transaction, each file in a savepoint;
* `options.py` — what a run may do (`force`, `max_delete_share`, parser processes...);
* `batches.py` — reading files into batches of records prepared for the database (pure CPU);
* `parser_processes.py` — the same in worker processes, files cut in pieces, while the run writes;
* `writing.py` — writing batches: each verdict checked in the transaction, rows in bulk;
* `events.py` — the run's events, packed a thousand to an outbox row;
* `complet_sweep.py` — after the files, deleting records absent from a Complet, within the mass-deletion guard;
* `unresolved.py` — after the files, references to records not in the directory yet;
* `kinds.py` — how each AAF family maps to a table and to events;
* `stored.py` — what is stored, as the run's steps read and write it;
* `report.py` — what a run did, per family and per file.
"""

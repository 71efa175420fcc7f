"""The directory's decisions, as plain functions: no database, broker, network, file or clock.

| module | what it decides |
|---|---|
| `canonical_records.py` | AAF attributes -> the canonical Person / Structure / Mef / Subject records, memberships |
| `aaf_values.py` | how an attribute value is read: first values, `$` fields, dates, yes/no flags; `RecordRejected` |
| `profiles.py` | a person's profiles (pupils, relatives, staff from their functions) |
| `relatives.py` | a pupil's relatives, and which are legal guardians |
| `first_degree.py` | what a first-degree (école) record says: names, classes, level, cycle, dates, services, |
| | guardians, directors; an école's circonscription |
| `families.py` | the six AAF families, which are persons, which family a category names |
| `fingerprints.py` | unchanged means unchanged: the record hashes and `MODEL_VERSION` |
| `changes.py` | what changed between two versions of a record (the `.updated` changes, memberships moved) |
| `search_keys.py` | how names and e-mails compare in lookups (case, accents) |
| `import_order.py` | the order records are applied in, so the later file wins |
| `complet_scope.py` | which records a Complet may delete: complete families, covered structures |
| `mass_deletion.py` | when a Complet's deletions are a mass deletion, and the import is refused |
"""

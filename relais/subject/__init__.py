"""Data-subject requests across every service (GDPR articles 15, 17 and 20): the kernel's share.

- `keys`: the keyed hash that names an erased person in audit records, never their jointure;
- `events`: the erasure request every service receives, and the confirmation each sends back,
  and `erasure_handler`, the handler of the consumer a service runs to erase on request (its own use case);
- `tables` and `audit`: the audit trail of requests and confirmations (request id, keyed hash);
- `bag`: a BagIt (RFC 8493) writer for the export a person is given.

Each service owns what it erases and exports (`services/<name>/subject.py`); the composition
root (`app/subject.py`) runs `relais subject export` and `relais subject erase`.
docs/subject-requests.md is the data-protection officer's side.
"""

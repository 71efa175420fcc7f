"""The vault's open archive format (contracts/vault/SPEC.md): BagIt bags, one per person.

* `bagit.py` — BagIt (RFC 8493) bags written, read and validated, errors naming the file at fault;
* `packing.py` — a person's live items packed into a bag of format 1.1 (`pack_person`), and a
  bag of format 1.1 or 1.0 unpacked into a vault (`unpack_bag`).
"""

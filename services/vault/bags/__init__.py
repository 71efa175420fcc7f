"""The open archive people and collectivités hold: bags written from the vault and read back
(``relais vault bag``, ``unbag``; contracts/vault/SPEC.md), to a folder, zips or an S3 prefix, streaming."""

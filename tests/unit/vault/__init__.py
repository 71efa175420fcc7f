"""The vault's rules (services/vault/rules/) and verify's comparison, alone: no I/O."""

"""Incremental sync: the vault follows the ENT (`relais vault sync`, and the service's scheduled sync)."""

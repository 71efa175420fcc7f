"""Provisioning's storage: its tables (`tables.py`), the queries that load what the rules need
(`queries.py`), and the licence counts a unit of work keeps up to date (`licence_pools.py`)."""

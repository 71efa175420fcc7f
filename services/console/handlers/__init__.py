"""The console's use cases: each checks the role (rules/roles.py), writes the audit log, and asks a port."""

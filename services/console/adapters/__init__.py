"""The console's adapters: its audit table, and the CAS client validating tickets with Relais's SSO."""

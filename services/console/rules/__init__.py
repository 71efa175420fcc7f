"""The console's pure decisions (no I/O): who has which role, what each role may do, sealed tokens."""

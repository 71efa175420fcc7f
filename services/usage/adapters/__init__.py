"""The usage service's adapters: its tables and the SQL that reads and writes them."""

"""The operator console: a web interface for the people who run Relais (README.md)."""

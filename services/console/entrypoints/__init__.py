"""The console's entrypoints: its web pages (http.py), translating requests into the desk's use cases."""

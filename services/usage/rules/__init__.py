"""The usage service's pure rules (no I/O): periods, pseudonyms, indicators, disclosure control."""

"""Relais: open infrastructure beside French school ENTs.

`relais` holds what every service shares (configuration, database access, the
event bus); each service's rules live in `services/<name>/`.
"""

__version__ = "0.1.0"

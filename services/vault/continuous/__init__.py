"""Continuous mode: connectors report what changes in the ENT, the vault keeps versions and tombstones.

* `events.py` — the `ent.item.changed` / `ent.item.deleted` events: built by connectors
  (`item_changed`, `item_deleted`: content inline or put in the store first), read by the vault (`parse`);
* `handler.py` — `ItemEvents`, the handler `relais serve vault` gives the bus consumer of `relais.q.vault`.
"""

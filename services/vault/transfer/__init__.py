"""Contract-end mode: export a source ENT into the vault, import the vault into a target ENT,
verify that nothing was lost (``relais vault export | import | verify``).

* :mod:`.export`, :mod:`.import_`, :mod:`.verify`: the use cases;
* :mod:`.pipeline`: the thread pool and batched checkpoints they share; :mod:`.listing`: persons'
  listings fetched ahead on their own threads; :mod:`.checkpoint`, :mod:`.tables`: the jobs'
  checkpoints (migration 0014_vault_transfer);
* :mod:`.compare` (the comparison rules of ``verify``), :mod:`.report`: plain Python, no I/O;
  how the vault keeps connector items is the vault's rule (``rules/item_metadata.py``, ``rules/item_ids.py``);
* :mod:`.blobs` (which blobs the store holds), :mod:`.peers` (connectors by name and
  configuration); :mod:`.cli`: the commands.
"""

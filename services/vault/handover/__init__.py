"""The contract-end handover pack of a tenant (``relais vault handover``): its bags, the facts, and a summary in
HTML and PDF a collectivité signs (``pack.py``)."""

"""Provisioning's use cases, each on a database connection inside the caller's transaction.

- `work.py`: `Context`, what one unit of work carries (tenant, time, causes, events to publish, counts);
- `directory_view.py`: `apply_directory_events`, provisioning's view of the directory, fed by its events;
- `reconcile.py`: `reconcile`, the grants of some accounts brought in line with the rules, within quotas;
- `full_evaluation.py`: `evaluate_all`, every account reconciled, chunks prepared by worker processes
  (`evaluation_worker.py`);
- `configuration.py`: `load_catalogue`, `load_rules`: check, store, re-evaluate; all or nothing;
- `departures.py`: `sweep_departures`, grants whose grace period is over revoked;
- `manual_grants.py`: `grant_manually`, `revoke_manually`, by a resource manager;
- `explain.py`: `explain`, why a person has what they have.
"""

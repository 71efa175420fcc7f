"""Who gets which licence, and why: provisioning's rules, free of I/O (no database, no bus, no clock, no files).

- `member.py`: `Member`, an account as provisioning sees it (structures by UAI, classes, functions…);
- `catalogue.py`: the resources, their licence models, quotas and attributes (`parse_catalogue`);
- `rules.py`: the assignment rules and the rule set (`parse_rules`);
- `causes.py`: which grants the rules call for, each with its cause (`wanted`: the first matching rule);
- `planning.py`: grant, revoke now, revoke after the grace period, cancel (`plan`);
- `quotas.py`: the quota rule (`refusal`), who gets freed seats first, quotas below the seats held;
- `managers.py`: who is a resource manager of a structure;
- `data_minimisation.py`: what a resource or an app receives about an account;
- `load_checks.py`: what refuses a new catalogue or rule set as a whole;
- `documents.py`: walking a configuration document's entries, naming each in errors.

The use cases (`handlers/`) load what these need from the database and write what they decide.
"""

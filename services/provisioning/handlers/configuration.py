"""Loading the catalogue and the rules: check, store, re-evaluate every account. All or nothing.

Everything is checked first (`grants.load_checks`); a problem raises
`CatalogueError` or `RuleError` with every problem listed, and the caller's
transaction, rolled back, leaves nothing of the load.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from ..adapters.queries import catalogue, held_counts, ruleset, store_config, structure_uais
from ..adapters.write_locks import change_configuration
from ..grants.catalogue import parse_catalogue
from ..grants.load_checks import CodesSeen, check_catalogue, check_codes, check_references
from ..grants.rules import parse_rules
from .full_evaluation import evaluate_all
from .work import Context


def load_catalogue(conn: Connection, document: dict[str, Any], ctx: Context) -> dict[str, int]:
    """Check and store a catalogue, then re-evaluate every account. All or nothing.

    Reconciliations in flight finish first, and the next wait for this one's transaction (`write_locks`).
    """
    resources = parse_catalogue(document)
    change_configuration(conn)
    check_catalogue({r.id: r for r in resources}, ruleset(conn), held_counts(conn))
    store_config(conn, "catalogue", {"resources": [r.to_dict() for r in resources]})
    return evaluate_all(conn, ctx)


def load_rules(conn: Connection, document: dict[str, Any], ctx: Context) -> dict[str, int]:
    """Check and store a rule set, then re-evaluate every account. All or nothing.

    Classes and groups named by the rules are looked for while the evaluation
    reads every account (a million records need not be read twice); a rule
    naming one that no account is in raises `RuleError` after the
    evaluation, and the caller's transaction, rolled back, leaves nothing of it.
    """
    rules = parse_rules(document)
    change_configuration(conn)
    structures = structure_uais(conn)
    check_references(rules, catalogue(conn), structures)
    store_config(conn, "rules", document)
    seen = CodesSeen(rules)
    counts = evaluate_all(conn, ctx, codes=seen)
    check_codes(rules, structures, seen)
    return counts

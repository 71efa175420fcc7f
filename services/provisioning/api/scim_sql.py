"""SCIM filters as SQL: the syntax tree scim2-models parses (RFC 7644 §3.4.2.2), walked into a SQLAlchemy condition.

scim2-models parses the filter and binds each attribute path to the attribute
its model (`User`, `Group`) declares: its type, whether it is multi-valued,
whether it is `caseExact`. `to_sql` walks that tree with a `Columns`, which
says where a source keeps each attribute: the directory's accounts
(`prov_person`, through what the app may receive) or an app's own resources
(`prov_scim_resource`, their SCIM JSON). The condition means what
`ScimFilter.match` means on the same resource (the tests hold them to it):

- attribute names are case-insensitive, and so are string comparisons unless
  the attribute is `caseExact` (the filter's value goes through the
  library's comparison key; the stored one through `fold`: PostgreSQL's
  `lower`, and on SQLite, whose `lower` only knows ASCII, Python's own);
- an absent attribute matches no comparison but `ne` (and `eq null`), a
  comparison on a multi-valued attribute matches if any value does (`ne`: if
  none is equal), `emails co "x"` compares `emails.value`;
- every condition is true or false, never NULL, so `not (...)` is exact.

Attributes of type string or boolean can be compared, anything else (the
`meta` dates, binary certificates) is refused with 400 invalidFilter naming
the attribute, as is an attribute the resource type does not declare.
"""

from __future__ import annotations

from collections.abc import Callable
from inspect import isclass
from typing import Any, Protocol
from unicodedata import normalize

from sqlalchemy import (
    ColumnClause,
    ColumnElement,
    Text,
    and_,
    cast,
    exists,
    false,
    func,
    literal,
    not_,
    or_,
    select,
    true,
)
from sqlalchemy.engine import Connection

Cond = ColumnElement[bool]
Expr = ColumnElement[Any]
Item = Callable[[str, str], Expr | None]  # an entry of a multi-valued attribute: (sub-attribute, kind) -> its value


class FilterError(ValueError):
    """A filter this service cannot answer; the caller says 400 invalidFilter."""


def fold(value: str | None) -> str | None:
    """The comparison key of a stored string of an attribute that is not caseExact (scim2-models' default)."""
    return None if value is None else normalize("NFC", normalize("NFC", value).lower())


def register_fold(conn: Connection) -> None:
    """Give a SQLite connection `scim_fold` (its own lower() leaves non-ASCII letters as they are)."""
    if conn.dialect.name == "sqlite":
        dbapi: Any = conn.connection.driver_connection
        dbapi.create_function("scim_fold", 1, fold, deterministic=True)


class Columns(Protocol):
    """Where one source keeps each attribute of one resource type."""

    dialect: str

    def scalar(self, name: str, sub: str | None, kind: str) -> Expr | None:
        """The value of a single-valued attribute (`name` or `name.sub`), None if the source never has it.

        `kind` is "str" (an SQL string) or "bool" (the SQL strings 'true'/'false').
        """

    def any_item(self, name: str, cond: Callable[[Item], Cond]) -> Cond:
        """Whether some entry of the multi-valued attribute `name` satisfies `cond`."""


def _kind(binding: Any) -> str:
    target = binding.target_type
    if isclass(target) and issubclass(target, bool):
        return "bool"
    if isclass(target) and (issubclass(target, str) or target.__name__ == "EmailStr"):
        return "str"
    raise FilterError(f"filtering on {binding.urn} (a {getattr(target, '__name__', target)}) is not offered: "
                      "only string and boolean attributes can be compared")


def _scim_name(model: Any, field: str) -> str:
    return model._scim_name(field)  # the name the attribute is serialised under ($ref included)


class _Sql:
    """One walk of a filter's tree into a condition over one source (a FilterVisitor of scim2-models)."""

    def __init__(self, scim_filter: Any, columns: Columns, strict: bool):
        from scim2_models.path import FilterVisitor

        self.filter, self.columns, self.strict = scim_filter, columns, strict
        self.unknown: set[str] = set()
        outer = self

        class Visitor(FilterVisitor[Cond]):
            def visit_comparison(self, node):
                return outer.comparison(node)

            def visit_present(self, node):
                return outer.present(node)

            def visit_not(self, node):
                return not_(self.visit(node.expr))

            def visit_logical_expr(self, node):
                terms = [self.visit(term) for term in node.terms]
                return and_(*terms) if node.op.value == "and" else or_(*terms)

            def visit_value_path(self, node):
                return outer.value_path(node)

        self.visitor = Visitor()

    def run(self) -> Cond:
        return self.visitor.visit(self.filter.ast)

    # -- attributes --------------------------------------------------------------
    def _bind(self, attr_path: Any, comparison: bool) -> Any:
        from scim2_models import InvalidFilterException

        try:
            binding = (self.filter.resolve_comparison if comparison else self.filter.resolve)(
                attr_path, strict=self.strict)
        except InvalidFilterException as exc:
            raise FilterError(f"{attr_path}: {exc.detail}") from None
        if binding is None:
            self.unknown.add(str(attr_path))
            return None
        if binding.field_name in ("meta", "schemas"):
            raise FilterError(f"filtering on {attr_path} is not offered")
        return binding

    # -- leaves ------------------------------------------------------------------
    def _compare(self, expr: Expr | None, binding: Any, op: str, value: Any) -> Cond:
        """`expr op value`, true or false (an absent value: None)."""
        if expr is None:  # an attribute this source never has
            if op in ("eq", "ne"):
                return true() if (value is None) == (op == "eq") else false()
            return false()
        if value is None:
            return expr.is_(None) if op == "eq" else expr.is_not(None) if op == "ne" else false()
        if op == "ne":
            return not_(self._compare(expr, binding, "eq", value))
        kind = _kind(binding)
        if kind == "bool":
            if not isinstance(value, bool):
                raise FilterError(f"{binding.urn} is a boolean: compare it with true or false")
            return and_(expr.is_not(None), expr == ("true" if value else "false"))
        if not isinstance(value, str):
            raise FilterError(f"{binding.urn} is a string: compare it with a quoted value")
        want = binding.comparable(value)
        have = expr if binding.case_exact else self._fold(expr)
        sqlite = self.columns.dialect == "sqlite"
        narrow = _narrowing(expr, getattr(self.columns, "raw", None), op, want, sqlite) if want else None
        if op in ("co", "sw", "ew") and want == "":
            cond: Cond = true()
        elif op == "eq":
            cond = have == want
        elif op == "co":
            cond = (func.instr(have, want) if sqlite else func.strpos(have, want)) > 0
        elif op == "sw":
            cond = func.substr(have, 1, len(want)) == want
        elif op == "ew":
            cond = (func.substr(have, -len(want)) if sqlite else func.right(have, len(want))) == want
        else:  # ordering, by code point as Python compares strings
            if not sqlite:
                have, want = have.collate("C"), literal(want, Text).collate("C")
            cond = {"gt": have > want, "ge": have >= want, "lt": have < want, "le": have <= want}[op]
        if narrow is not None:
            return and_(narrow, expr.is_not(None), cond)
        return and_(expr.is_not(None), cond)

    def _fold(self, expr: Expr) -> Expr:
        return func.scim_fold(expr) if self.columns.dialect == "sqlite" else func.lower(expr)

    def _present(self, expr: Expr | None) -> Cond:
        if expr is None:
            return false()
        return and_(expr.is_not(None), expr != "")

    def _value(self, binding: Any, node: Any) -> Any:
        from scim2_models import InvalidFilterException
        from scim2_models.path import coerce_value

        try:
            return coerce_value(binding, node.value, node.op)
        except InvalidFilterException as exc:
            raise FilterError(exc.detail) from None

    def comparison(self, node: Any, item: Item | None = None, inner: Any = None) -> Cond:
        binding = (inner or self)._bind(node.attr_path, comparison=True)
        if binding is None:
            return false()
        op = node.op.value
        value = self._value(binding, node)
        if op not in ("eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"):
            raise FilterError(f"operator {op} is not offered")
        _kind(binding)  # only strings and booleans compare: says so for any other type
        if item is not None:  # inside emails[...]: a sub-attribute of the entry
            entry = item(_scim_name(binding.model, binding.field_name), _kind(binding))
            return self._compare(entry, binding, op, value)
        model = binding.model
        name = _scim_name(model, binding.field_name)
        if binding.is_multivalued:
            if binding.sub_field_name is None:
                raise FilterError(f"filtering on {node.attr_path} (a list of values) is not offered")
            sub, kind = _scim_name(binding.field_type, binding.sub_field_name), _kind(binding)
            if op == "ne":
                return not_(self.columns.any_item(
                    name, lambda it: self._compare(it(sub, kind), binding, "eq", value)))
            if value is None and op == "eq":
                return or_(not_(self.columns.any_item(name, lambda it: true())),
                           self.columns.any_item(name, lambda it: self._compare(it(sub, kind), binding, "eq", None)))
            return self.columns.any_item(name, lambda it: self._compare(it(sub, kind), binding, op, value))
        single = _scim_name(binding.field_type, binding.sub_field_name) if binding.sub_field_name else None
        return self._compare(self.columns.scalar(name, single, _kind(binding)), binding, op, value)

    def present(self, node: Any, item: Item | None = None, inner: Any = None) -> Cond:
        binding = (inner or self)._bind(node.attr_path, comparison=False)
        if binding is None:
            return false()
        if item is not None:
            return self._present(item(_scim_name(binding.model, binding.field_name), "str"))
        model = binding.model
        name = _scim_name(model, binding.field_name)
        sub_model = binding.field_type
        complex_ = isclass(sub_model) and hasattr(sub_model, "model_fields")
        if binding.sub_field_name is not None:
            sub_name = _scim_name(sub_model, binding.sub_field_name)
            if binding.is_multivalued:
                return self.columns.any_item(name, lambda it: self._present(it(sub_name, "str")))
            return self._present(self.columns.scalar(name, sub_name, _kind(binding)))
        if binding.is_multivalued:
            if not complex_:
                raise FilterError(f"filtering on {node.attr_path} (a list of values) is not offered")
            subs = [_scim_name(sub_model, f) for f in sub_model.model_fields]
            return self.columns.any_item(name, lambda it: or_(*[self._present(it(s, "str")) for s in subs]))
        if complex_:  # name pr: some sub-attribute holds a value
            subs = [_scim_name(sub_model, f) for f in sub_model.model_fields]
            return or_(*[self._present(self.columns.scalar(name, s, "str")) for s in subs])
        return self._present(self.columns.scalar(name, None, _kind(binding)))

    def value_path(self, node: Any) -> Cond:
        from scim2_models import ScimFilter

        binding = self._bind(node.attr_path, comparison=False)
        if binding is None:
            return false()
        if not binding.is_multivalued or not (isclass(binding.field_type)
                                              and hasattr(binding.field_type, "model_fields")):
            raise FilterError(f"{node.attr_path} is not a multi-valued complex attribute: nothing to select in it")
        bound: Any = ScimFilter
        inner = _Sql(bound[binding.field_type](node.val_filter), self.columns, self.strict)
        name = _scim_name(binding.model, binding.field_name)

        def walk(n: Any, it: Item) -> Cond:
            from scim2_models.path import Comparison, LogicalExpr, Not, Present

            if isinstance(n, Comparison):
                return self.comparison(n, it, inner)
            if isinstance(n, Present):
                return self.present(n, it, inner)
            if isinstance(n, Not):
                return not_(walk(n.expr, it))
            if isinstance(n, LogicalExpr):
                terms = [walk(t, it) for t in n.terms]
                return and_(*terms) if n.op.value == "and" else or_(*terms)
            raise FilterError("a value selection inside another is not a filter (RFC 7644 §3.4.2.2)")
        return self.columns.any_item(name, lambda it: walk(node.val_filter, it))


_UNSAFE_IN_TEXT = frozenset('"\\')  # characters JSON escapes: the stored text does not hold them as they are


def _narrowing(expr: Expr, raw: Expr | None, op: str, want: str, sqlite: bool) -> Cond | None:
    """A cheap case-insensitive LIKE that every match satisfies, tested before the exact comparison.

    The exact one parses the stored JSON (SQLite's json_extract, folded in Python; PostgreSQL's
    cast to json) for every row, which costs some microseconds a row; matching the stored text
    (SQLite's LIKE, ASCII case-insensitive; PostgreSQL's ILIKE) costs far less, and most rows fail
    it. Only for an ASCII value that JSON writes as it is; `i` and `k` match any character, since
    Python's lower() turns two non-ASCII letters into them (U+0130, U+212A). A plain column (the
    jointure) is matched anchored; in the JSON text, a string value stands between quotes, so `eq`
    looks for `"value"`, `sw` for `"value` and `ew` for `value"` (JSON escapes neither the
    letters nor the characters such a value may hold).
    """
    if op not in ("eq", "co", "sw", "ew") or not want.isascii() or not want.isprintable() \
            or _UNSAFE_IN_TEXT & set(want):
        return None
    pattern = "".join("_" if ch in "ik" else "\\" + ch if ch in "%_\\" else ch for ch in want)
    if isinstance(expr, ColumnClause):
        before = "%" if op in ("co", "ew") else ""
        after = "%" if op in ("co", "sw") else ""
        pattern = before + pattern + after
        return expr.like(pattern, escape="\\") if sqlite else expr.ilike(pattern, escape="\\")
    if raw is None:
        return None
    opening = '"' if op in ("eq", "sw") else ""
    closing = '"' if op in ("eq", "ew") else ""
    pattern = "%" + opening + pattern + closing + "%"
    return raw.like(pattern, escape="\\") if sqlite else raw.ilike(pattern, escape="\\")


def to_sql(scim_filter: Any, columns: Columns, *, strict: bool = True) -> tuple[Cond, set[str]]:
    """The condition for a bound `ScimFilter` over `columns`, and the attribute paths the model does not declare.

    With `strict`, such an attribute raises FilterError; without (an endpoint serving several resource
    types), it matches nothing on this type, as RFC 7644 §3.4.2.1 has it.
    """
    walk = _Sql(scim_filter, columns, strict)
    return walk.run(), walk.unknown


# -- the sources ----------------------------------------------------------------------

def _json_path(*names: str) -> str:
    return "$" + "".join(f'."{n}"' for n in names)


def _stored_json(dialect: str, data: Expr) -> tuple[Expr, Expr]:
    """A binary column holding JSON, as (the document to read fields from, its text for `_narrowing`)."""
    if dialect == "sqlite":
        as_text: Expr = cast(data, Text)
        return as_text, as_text
    from sqlalchemy.dialects.postgresql import JSON

    decoded: Expr = func.convert_from(data, literal("UTF8"))
    return cast(decoded, JSON), decoded


class JsonColumns:
    """An app's own resources: their SCIM JSON (as scim2-models dumps it) in a binary column."""

    def __init__(self, dialect: str, data: Expr, id_column: Expr):
        self.dialect, self.id = dialect, id_column
        self.doc, self.raw = _stored_json(dialect, data)

    def _get(self, doc: Expr, names: tuple[str, ...], kind: str) -> Expr:
        if self.dialect == "sqlite":
            if kind == "bool":
                return func.nullif(func.json_type(doc, _json_path(*names)), "null")
            return func.json_extract(doc, _json_path(*names))
        return func.json_extract_path_text(doc, *(literal(n, Text) for n in names))

    def scalar(self, name: str, sub: str | None, kind: str) -> Expr | None:
        if name == "id" and sub is None:
            return self.id
        return self._get(self.doc, (name, sub) if sub else (name,), kind)

    def any_item(self, name: str, cond: Callable[[Item], Cond]) -> Cond:
        if self.dialect == "sqlite":
            entries = func.json_each(self.doc, _json_path(name)).table_valued("value", "type").alias("entry")

            def item(sub: str, kind: str) -> Expr:
                if kind == "bool":
                    return func.nullif(func.json_type(entries.c.value, _json_path(sub)), "null")
                return func.json_extract(entries.c.value, _json_path(sub))
            is_object = entries.c.type == "object"
        else:
            array = self.doc.op("->")(literal(name))
            entries = func.json_array_elements(array).table_valued("value").alias("entry")

            def item(sub: str, kind: str) -> Expr:
                return entries.c.value.op("->>")(literal(sub))
            is_object = func.json_typeof(entries.c.value) == "object"
        return exists(select(literal(1)).select_from(entries).where(is_object, cond(item)))


class DirectoryUserColumns:
    """The directory's accounts as Users: id and userName the jointure, active always, and of the name and
    email only what the app may receive (`App.attributes`); nothing else."""

    def __init__(self, dialect: str, jointure: Expr, data: Expr, attributes: frozenset[str]):
        self.dialect, self.jointure, self.attributes = dialect, jointure, attributes
        self.doc, self.raw = _stored_json(dialect, data)

    def _field(self, key: str) -> Expr | None:
        if key not in self.attributes:
            return None
        raw = (func.json_extract(self.doc, _json_path(key)) if self.dialect == "sqlite"
               else self.doc.op("->>")(literal(key)))
        return func.nullif(raw, "")

    def scalar(self, name: str, sub: str | None, kind: str) -> Expr | None:
        if sub is None and name in ("id", "userName"):
            return self.jointure
        if sub is None and name == "active":
            return literal("true")
        if name == "name" and sub in ("givenName", "familyName"):
            return self._field("first_name" if sub == "givenName" else "last_name")
        return None

    def any_item(self, name: str, cond: Callable[[Item], Cond]) -> Cond:
        email = self._field("email") if name == "emails" else None
        if email is None:
            return false()
        entry = {"value": email, "primary": literal("true")}  # the one email, primary, with no type
        return and_(email.is_not(None), cond(lambda sub, kind: entry.get(sub)))

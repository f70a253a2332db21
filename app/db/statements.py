"""Tenant statements: SQLAlchemy Core expressions, checked structurally, compiled once for asyncpg.

A hot-path query is written as a Core `select()` / `insert()` / `update()` / `delete()` over the
model tables, with the tenant as the bind parameter `TENANT` (app/db/tenant_rule.py).
`tenant_statement(stmt)` then:
1. walks the expression and refuses it (TenantScopeError, naming the table) unless every tenant
   table or alias in every FROM, JOIN, subquery, CTE and DML target is constrained by
   `<that table>.tenant_id = :tenant`, AND-ed at its own level (a predicate inside an OR, in
   another table's condition or in SQL text does not count), and every INSERT into a tenant
   table writes `:tenant` as its tenant_id;
2. compiles it for the asyncpg dialect into `$n` SQL plus the parameter order, with the bind
   casts taken from the columns' types;
3. registers it, so a test can PREPARE every statement against the migrated schema.
TenantDB (app/db/tenant_db.py) runs the compiled SQL on the request's asyncpg connection with
`tenant` filled from the caller: the ORM's per-execution cost is never paid on the hot path.

Statements are compiled at import, or once per *shape* (which filters, which sort, cursor or
not) through `@statement_family`, cached by shape, never by values.
"""

from __future__ import annotations

import re
import typing
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, TypeVar, cast

from sqlalchemy import CompoundSelect, Delete, Insert, Select, Update
from sqlalchemy.dialects.postgresql.asyncpg import PGDialect_asyncpg
from sqlalchemy.sql import operators
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import (
    BinaryExpression,
    BindParameter,
    BooleanClauseList,
    ClauseElement,
    ColumnClause,
    Grouping,
    Label,
    TextClause,
)
from sqlalchemy.sql.schema import Column
from sqlalchemy.sql.selectable import (
    Alias,
    AliasedReturnsRows,
    FromClause,
    Join,
    ScalarSelect,
    TableClause,
    TableValuedAlias,
)

from app.db.tenant_rule import TENANT_COLUMN, TENANT_PARAM, is_tenant_table

_DIALECT = PGDialect_asyncpg()
# Literal SQL that may appear in a statement: constants only ('[]'::json, 1). Anything else
# could hide a query on a tenant table from the check.
_SAFE_LITERAL = re.compile(r"^(?:'[^']*'(?:::\w+(?:\[\])?)?|\d+|\*)$")
_STATEMENTS = (Select, CompoundSelect, Insert, Update, Delete)


class TenantScopeError(ValueError):
    """A statement that does not scope every tenant table it touches to `:tenant`. A bug."""


@dataclass(frozen=True, slots=True)
class TenantStatement:
    """Compiled SQL (`$n` placeholders) and the bind names in `$n` order; `tenant` among them."""

    sql: str
    params: tuple[str, ...]
    name: str

    def args(self, tenant: Any, values: dict[str, Any]) -> list[Any]:
        """Positional arguments for asyncpg; the tenant always comes from the caller."""
        return [tenant if name == TENANT_PARAM else values[name] for name in self.params]


# Every statement compiled at import; families add theirs through `all_statements()`.
_REGISTRY: list[TenantStatement] = []
_Shapes = Callable[[], Iterable[tuple[Any, ...]]]
_FAMILIES: list[tuple[Callable[..., TenantStatement], _Shapes, _Shapes]] = []


def tenant_statement(stmt: ClauseElement, name: str = "") -> TenantStatement:
    """Check and compile `stmt` (see the module docstring); registered for the PREPARE sweep."""
    compiled = compile_checked(stmt, name)
    _REGISTRY.append(compiled)
    return compiled


def compile_checked(stmt: ClauseElement, name: str = "") -> TenantStatement:
    check_tenant_scope(stmt)
    compiled = cast(SQLCompiler, stmt.compile(dialect=_DIALECT))
    params = tuple(compiled.positiontup or ())
    constants = [key for key, bind in compiled.binds.items() if bind.value is not None or bind.callable]
    if constants:
        # A constant bind (a Python-side column default, `version + 1`) would need its value at
        # run time: use server_default / literal_column so every parameter is named and given.
        raise TenantScopeError(f"{name or 'statement'}: constant bind parameters {constants}")
    if TENANT_PARAM not in params:
        raise TenantScopeError(f"{name or 'statement'}: does not use the tenant parameter")
    return TenantStatement(compiled.string, params, name)


F = TypeVar("F", bound=Callable[..., TenantStatement])


def statement_family(
    shapes: Callable[[], Iterable[tuple[Any, ...]]],
    widest: Callable[[], Iterable[tuple[Any, ...]]],
    maxsize: int = 1024,
) -> Callable[[F], F]:
    """A function from a hashable *shape* to a statement, cached by shape.

    `shapes()` enumerates every shape it accepts (the PREPARE sweep test builds them all);
    `widest()` the few that use every column the family can name: `build_families()` compiles
    those when the app is built, so a renamed model attribute fails `create_app()`.
    """

    def wrap(build: F) -> F:
        cached = lru_cache(maxsize=maxsize)(build)
        _FAMILIES.append((cached, shapes, widest))
        return cached  # type: ignore[return-value]

    return wrap


def build_families() -> None:
    for build, _, widest in _FAMILIES:
        for shape in widest():
            build(*shape)


def all_statements() -> Iterator[TenantStatement]:
    """Every statement the app can run on TenantDB, every shape of every family included."""
    yield from _REGISTRY
    for build, shapes, _ in _FAMILIES:
        for shape in shapes():
            yield build(*shape)


# --- the structural check ----------------------------------------------------------------

@dataclass(frozen=True)
class _Scope:
    """Where a nested statement sits. SQLAlchemy correlates a subquery automatically only to
    the immediately enclosing statement's tables (`outer`); `.correlate(t)` reaches any
    enclosing level (`ancestors`). A table correlated this way is scoped by that statement."""

    outer: frozenset[int] = frozenset()
    ancestors: frozenset[int] = frozenset()

    def inside(self, tables: Iterable[Any]) -> _Scope:
        level = frozenset(_key(t) for t in tables)
        return _Scope(level, self.ancestors | self.outer | level)

    def correlated(self, stmt: Any) -> frozenset[int]:
        explicit = {_key(t) for t in getattr(stmt, "_correlate", ()) or ()}
        return self.outer | (frozenset(explicit) & self.ancestors)


_TOP = _Scope()


def check_tenant_scope(stmt: ClauseElement) -> None:
    _check(stmt, _TOP, seen=set())


def _check(stmt: ClauseElement, scope: _Scope, seen: set[int]) -> None:
    if id(stmt) in seen:
        return
    seen.add(id(stmt))
    if isinstance(stmt, CompoundSelect):
        for select in stmt.selects:
            _check(select, scope, seen)
    elif isinstance(stmt, Select):
        _check_select(stmt, scope, seen)
    elif isinstance(stmt, Insert):
        _check_insert(stmt, scope, seen)
    elif isinstance(stmt, (Update, Delete)):
        _check_update_or_delete(stmt, scope, seen)
    else:
        raise TenantScopeError(f"unsupported statement {type(stmt).__name__}")


def _check_select(select: Select, scope: _Scope, seen: set[int]) -> None:
    tables: list[FromClause] = []
    conditions = _conjuncts(select.whereclause)
    for from_ in select.get_final_froms():
        _from_tables(from_, tables, conditions)
    _require_scoped(tables, conditions, scope.correlated(select))
    _check_nested(select, scope.inside(tables), seen)


def _check_insert(insert: Insert, scope: _Scope, seen: set[int]) -> None:
    table = insert.table
    if is_tenant_table(table):
        tenant_value = _inserted_tenant(insert)
        if not _is_tenant_param(tenant_value):
            raise TenantScopeError(f"INSERT INTO {_name(table)} must write :{TENANT_PARAM} as {TENANT_COLUMN}")
        conflict = getattr(insert, "_post_values_clause", None)
        sets = getattr(conflict, "update_values_to_set", None) or []
        if any(_column_name(column) == TENANT_COLUMN for column, _ in sets):
            raise TenantScopeError(f"INSERT INTO {_name(table)} ON CONFLICT must not change {TENANT_COLUMN}")
    _check_nested(insert, scope.inside([table]), seen)


def _inserted_tenant(insert: Insert) -> Any:
    if insert.select is not None:
        names = list(insert._select_names or [])
        if TENANT_COLUMN not in names:
            return None
        column = list(insert.select.selected_columns)[names.index(TENANT_COLUMN)]
        return column.element if isinstance(column, Label) else column
    if insert._multi_values:
        rows = [row for values in insert._multi_values for row in values]
        found = [_value_for(row, TENANT_COLUMN) for row in rows]
        return found[0] if found and all(_is_tenant_param(v) for v in found) else None
    return _value_for(insert._values or {}, TENANT_COLUMN)


def _value_for(values: Any, column_name: str) -> Any:
    items = values.items() if isinstance(values, dict) else enumerate(values)
    for column, value in items:
        if _column_name(column) == column_name:
            return value
    return None


def _check_update_or_delete(stmt: Update | Delete, scope: _Scope, seen: set[int]) -> None:
    target = stmt.table
    conditions = _conjuncts(typing.cast(ClauseElement | None, stmt.whereclause))
    # Tables named in WHERE besides the target become UPDATE ... FROM / DELETE ... USING.
    where = typing.cast(ClauseElement | None, stmt.whereclause)
    tables = [target, *_referenced_tables(where, exclude={_key(target)} | scope.outer)]
    _require_scoped([t for t in tables if is_tenant_table(t)], conditions, scope.correlated(stmt))
    if isinstance(stmt, Update):
        for column, value in (stmt._values or {}).items():
            if _column_name(column) == TENANT_COLUMN and not _is_tenant_param(value):
                raise TenantScopeError(f"UPDATE {_name(target)} must not change {TENANT_COLUMN}")
    _check_nested(stmt, scope.inside(tables), seen)


def _from_tables(from_: FromClause, tables: list[FromClause], conditions: list[ClauseElement]) -> None:
    """Collect the tenant tables of one FROM entry, and its JOINs' ON conditions."""
    if isinstance(from_, Join):
        _from_tables(from_.left, tables, conditions)
        _from_tables(from_.right, tables, conditions)
        conditions.extend(_conjuncts(cast(ClauseElement, from_.onclause)))
    elif isinstance(from_, TableClause) or _is_table_alias(from_):
        if is_tenant_table(from_):
            tables.append(from_)
    elif isinstance(from_, (AliasedReturnsRows, TableValuedAlias)):
        return  # a subquery, CTE or function: checked on its own by _check_nested
    else:
        raise TenantScopeError(f"unsupported FROM element {type(from_).__name__}")


def _require_scoped(tables: list[FromClause], conditions: list[ClauseElement], outer: frozenset[int]) -> None:
    scoped = {_key(column.table) for column in _tenant_columns(conditions)}
    for table in tables:
        key = _key(table)
        if key not in scoped and key not in outer:
            raise TenantScopeError(f"{_name(table)} is not constrained by {_name(table)}.{TENANT_COLUMN} = :{TENANT_PARAM}")


def _tenant_columns(conditions: list[ClauseElement]) -> Iterator[ColumnClause]:
    """The tenant_id columns compared with `:tenant` by the AND-ed conditions."""
    for condition in conditions:
        if not isinstance(condition, BinaryExpression) or condition.operator is not operators.eq:
            continue
        for column, other in ((condition.left, condition.right), (condition.right, condition.left)):
            if isinstance(column, ColumnClause) and column.name == TENANT_COLUMN and _is_tenant_param(other):
                yield column


def _conjuncts(clause: ClauseElement | None) -> list[ClauseElement]:
    """The AND-ed terms of a condition; anything else (an OR, a NOT) is one opaque term."""
    if clause is None:
        return []
    if isinstance(clause, Grouping):
        return _conjuncts(typing.cast(ClauseElement, clause.element))
    if isinstance(clause, BooleanClauseList) and clause.operator is operators.and_:
        return [term for element in clause.clauses for term in _conjuncts(element)]
    return [clause]


def _check_nested(element: ClauseElement, scope: _Scope, seen: set[int]) -> None:
    """Check every statement nested in `element`: scalar, EXISTS and IN subqueries may
    correlate to the enclosing tables (`scope`); FROM subqueries and CTEs stand alone."""
    for child in element.get_children():
        if isinstance(child, TextClause):
            raise TenantScopeError("SQL text inside a tenant statement cannot be checked")
        if isinstance(child, ColumnClause) and child.is_literal and not _SAFE_LITERAL.match(child.name):
            raise TenantScopeError(f"literal SQL {child.name!r} inside a tenant statement cannot be checked")
        if isinstance(child, _STATEMENTS):
            _check(child, scope, seen)
        elif isinstance(child, AliasedReturnsRows) and not isinstance(child, TableValuedAlias) \
                and not _is_table_alias(child):
            _check(child.element, _TOP, seen)
        elif isinstance(child, ScalarSelect):
            _check(child.element, scope, seen)
        elif not isinstance(child, (TableClause, Column)):
            _check_nested(child, scope, seen)


def _referenced_tables(clause: ClauseElement | None, exclude: set[int] | frozenset[int]) -> list[FromClause]:
    """Tables whose columns a condition names at its own level (not inside a subquery)."""
    found: dict[int, FromClause] = {}

    def visit(element: ClauseElement) -> None:
        for child in element.get_children():
            if isinstance(child, (*_STATEMENTS, ScalarSelect, AliasedReturnsRows)):
                continue
            table = getattr(child, "table", None) if isinstance(child, ColumnClause) else None
            if table is not None and _key(table) not in exclude:
                found.setdefault(_key(table), table)
            visit(child)

    if clause is not None:
        found_in_self = getattr(clause, "table", None) if isinstance(clause, ColumnClause) else None
        if found_in_self is not None and _key(found_in_self) not in exclude:
            found[_key(found_in_self)] = found_in_self
        visit(clause)
    return list(found.values())


def _is_table_alias(from_: Any) -> bool:
    return isinstance(from_, Alias) and isinstance(from_.element, TableClause)


def _is_tenant_param(value: Any) -> bool:
    return isinstance(value, BindParameter) and value.key == TENANT_PARAM


def _key(from_: Any) -> int:
    # ORM attributes (Item.name) bring annotated copies of the table: compare the originals.
    return id(getattr(from_, "_Annotated__element", from_))


def _column_name(column: Any) -> str:
    return column if isinstance(column, str) else str(getattr(column, "key", None) or getattr(column, "name", ""))


def _name(table: Any) -> str:
    return getattr(table, "name", None) or getattr(table, "description", None) or type(table).__name__

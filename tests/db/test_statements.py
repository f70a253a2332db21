"""The structural tenant check of compiled statements (app/db/statements.py).

Each refused case is a way the old regex check could be fooled, or a shape a real bug takes;
each accepted case is a form the app itself uses.
"""

from __future__ import annotations

import pytest
from sqlalchemy import and_, bindparam, delete, exists, func, insert, literal_column, or_, select, text, update
from sqlalchemy.dialects.postgresql import UUID

from app.db.statements import TenantScopeError, all_statements, check_tenant_scope, compile_checked
from app.db.tenant_rule import TENANT
from app.items.models import Item, Tag, item_tags
from app.users.models import User

items, tags, users = Item.__table__, Tag.__table__, User.__table__
ITEM = bindparam("item_id", type_=UUID(as_uuid=True))
OTHER = bindparam("other", type_=UUID(as_uuid=True))

REFUSED = {
    # The tenant predicate inside an OR: `id = $2 OR tenant_id = $1` reads every tenant's row.
    "predicate inside OR": select(items.c.id).where(or_(items.c.id == ITEM, items.c.tenant_id == TENANT)),
    # The predicate hidden in SQL text (or a comment): nothing a walk can verify.
    "predicate in SQL text": select(items.c.id).where(text("tenant_id = :tenant /* scoped */")),
    "literal SQL fragment": select(items.c.id, literal_column("(SELECT count(*) FROM users)")).where(
        items.c.tenant_id == TENANT),
    # A join to a tenant table whose rows are never constrained.
    "joined table unscoped": select(items.c.id, tags.c.name).select_from(
        items.join(item_tags, and_(item_tags.c.tenant_id == TENANT, item_tags.c.item_id == items.c.id))
        .join(tags, tags.c.id == item_tags.c.tag_id)
    ).where(items.c.tenant_id == TENANT),
    # Scoped only through another table's condition, not its own.
    "scoped only by another table": select(items.c.id).select_from(
        items.join(users, users.c.tenant_id == items.c.tenant_id)
    ).where(items.c.tenant_id == TENANT),
    # An UPDATE whose subquery reads every tenant.
    "update with unscoped subquery": update(items).where(
        items.c.tenant_id == TENANT, items.c.owner_id.in_(select(users.c.id).where(users.c.is_active))
    ).values(name="x"),
    "update without predicate": update(items).where(items.c.id == ITEM).values(name="x"),
    "update moving a row": update(items).where(items.c.tenant_id == TENANT).values(tenant_id=OTHER),
    "delete with the wrong tenant": delete(items).where(items.c.tenant_id == OTHER),
    "insert of another tenant": insert(tags).values(tenant_id=OTHER, id=ITEM, name=bindparam("new_name")),
    "insert without tenant": insert(tags).values(id=ITEM, name=bindparam("new_name")),
    "insert from an unscoped select": insert(item_tags).from_select(
        ["tenant_id", "item_id", "tag_id"], select(TENANT, ITEM, tags.c.id)
    ),
    "unscoped CTE": select(literal_column("1")).select_from(
        select(items.c.id).cte("c")
    ).where(items.c.tenant_id == TENANT),
    "unscoped FROM subquery": select(items.c.id).where(
        items.c.tenant_id == TENANT, items.c.id.in_(select(select(tags.c.id).subquery().c.id))
    ),
    # A subquery two levels down names the outer table without correlating it: SQLAlchemy adds
    # it to the inner FROM as a second, unscoped copy (a bug the list endpoint once had).
    "uncorrelated two levels down": select(items.c.id).where(
        items.c.tenant_id == TENANT,
        ~exists().select_from(func.unnest(bindparam("ids")).table_valued("id").render_derived(name="w")).where(
            ~exists().where(item_tags.c.tenant_id == TENANT, item_tags.c.item_id == items.c.id)
        ),
    ),
}


@pytest.mark.parametrize("case", REFUSED)
def test_a_statement_that_escapes_its_tenant_is_refused_when_built(case):
    with pytest.raises(TenantScopeError):
        check_tenant_scope(REFUSED[case])


def test_the_refusal_names_the_table():
    with pytest.raises(TenantScopeError, match="tags is not constrained by tags.tenant_id = :tenant"):
        check_tenant_scope(REFUSED["joined table unscoped"])


def test_a_statement_without_the_tenant_parameter_is_refused():
    with pytest.raises(TenantScopeError):
        compile_checked(select(func.now()))


ACCEPTED = {
    "scoped select": select(items.c.id).where(items.c.tenant_id == TENANT, items.c.id == ITEM),
    "scoped join": select(items.c.id).select_from(
        items.join(users, and_(users.c.tenant_id == TENANT, users.c.id == items.c.owner_id))
    ).where(items.c.tenant_id == TENANT),
    "correlated subquery": select(items.c.id).where(
        items.c.tenant_id == TENANT,
        exists().where(item_tags.c.tenant_id == TENANT, item_tags.c.item_id == items.c.id),
    ),
    "alias scoped on its own": select(items.alias("i").c.id).where(items.alias("i").c.tenant_id == TENANT),
    "scoped update": update(items).where(items.c.tenant_id == TENANT, items.c.id == ITEM).values(name="x"),
    "scoped insert": insert(tags).values(tenant_id=TENANT, id=ITEM, name=bindparam("new_name")),
}


@pytest.mark.parametrize("case", [c for c in ACCEPTED if c != "alias scoped on its own"])
def test_scoped_statements_are_accepted(case):
    check_tenant_scope(ACCEPTED[case])


def test_an_alias_is_scoped_by_its_own_predicate_not_the_tables():
    alias = items.alias("i")
    check_tenant_scope(select(alias.c.id).where(alias.c.tenant_id == TENANT))
    with pytest.raises(TenantScopeError):
        check_tenant_scope(select(alias.c.id).where(items.c.tenant_id == TENANT))


def test_every_statement_of_the_app_passes_the_check():
    import app.main  # noqa: F401  (imports every router, hence every statement)

    statements = list(all_statements())
    assert len(statements) > 1000  # every list shape included
    for statement in statements:
        assert ":" not in statement.sql.replace("::", ""), statement.name  # every bind compiled to $n

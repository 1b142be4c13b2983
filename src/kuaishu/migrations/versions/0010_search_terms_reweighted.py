"""search terms: field weights (title 4, description 2, rest 1) and synonyms

The term index also holds the weight, so ranking reads a posting list from the index alone.
Rebuilds catalog_search_terms for every published entry with catalog.search's current terms:
the weight of the field a term came from, and the terms a synonym list word brings (医疗机构
finds 医院). Reads the entries with plain SQL so that later changes to the models do not break
this step.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05 02:45:00
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

terms_table = sa.table(
    "catalog_search_terms",
    sa.column("entry_id", sa.Integer),
    sa.column("term", sa.String),
    sa.column("weight", sa.Integer),
)


def _list(value: Any) -> list[str]:
    if isinstance(value, str):
        value = json.loads(value or "[]")
    return [str(v) for v in value or []]


def upgrade() -> None:
    from kuaishu.catalog.search import entry_fields, weighted_terms

    bind = op.get_bind()
    with op.batch_alter_table("catalog_search_terms", schema=None) as batch_op:
        batch_op.drop_index("ix_catalog_search_terms_term_entry")
        batch_op.create_index(
            "ix_catalog_search_terms_term_entry_weight",
            ["term", "entry_id", "weight"],
            unique=False,
        )
    if bind.dialect.name == "postgresql":  # SQLite keeps no column comments
        op.alter_column(
            "catalog_search_terms",
            "weight",
            existing_type=sa.Integer(),
            existing_nullable=False,
            existing_comment="2 = in the name",
            comment="4 title, 2 description, 1 the rest",
        )
    entries = bind.execute(
        sa.text(
            "SELECT e.id, r.id, r.name, r.summary, r.keywords, r.domain, d.name"
            " FROM catalog_entries e"
            " JOIN catalog_revisions r ON r.id = e.published_revision_id"
            " LEFT JOIN departments d ON d.id = e.department_id"
            " WHERE e.status = 'published'"
        )
    ).all()
    if not entries:
        return
    items: dict[int, list[str]] = defaultdict(list)
    for revision_id, name, description in bind.execute(
        sa.text(
            "SELECT i.revision_id, i.name, i.description FROM catalog_data_items i"
            " JOIN catalog_entries e ON e.published_revision_id = i.revision_id"
        )
    ):
        items[revision_id] += [name, description or ""]
    bind.execute(sa.delete(terms_table))
    for entry_id, revision_id, name, summary, keywords, domain, department in entries:
        rest = [*_list(keywords), *items[revision_id], department or "", domain or ""]
        found = weighted_terms(entry_fields(name, summary or "", rest))
        rows = [{"entry_id": entry_id, "term": t, "weight": w} for t, w in found.items()]
        if rows:
            bind.execute(sa.insert(terms_table), rows)


def downgrade() -> None:
    """The rows stay as they are: the older code matches on them the same way (its ranking does
    not read the weight)."""
    with op.batch_alter_table("catalog_search_terms", schema=None) as batch_op:
        batch_op.drop_index("ix_catalog_search_terms_term_entry_weight")
        batch_op.create_index(
            "ix_catalog_search_terms_term_entry", ["term", "entry_id"], unique=False
        )
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column(
            "catalog_search_terms",
            "weight",
            existing_type=sa.Integer(),
            existing_nullable=False,
            existing_comment="4 title, 2 description, 1 the rest",
            comment="2 = in the name",
        )

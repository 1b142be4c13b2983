"""outbound allow list and sign-in failures

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05 01:28:41.810194
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import kuaishu.db

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "allowed_destinations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum("host", "folder", name="destinationkind", native_enum=False, length=16),
            nullable=False,
            comment="host | folder",
        ),
        sa.Column(
            "value",
            sa.String(length=255),
            nullable=False,
            comment="host name, *.suffix, IP, CIDR network, or absolute folder path",
        ),
        sa.Column("port", sa.Integer(), nullable=True, comment="the one port allowed (NULL: any)"),
        sa.Column("note", sa.String(length=200), nullable=False, comment="why it is allowed"),
        sa.Column("created_by", sa.Integer(), nullable=True, comment="the operator who added it"),
        sa.Column(
            "created_at",
            kuaishu.db.UTCDateTime(timezone=True),
            nullable=False,
            comment="added (UTC)",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_allowed_destinations")),
        sa.UniqueConstraint(
            "kind", "value", "port", name=op.f("uq_allowed_destinations_kind_value_port")
        ),
        comment="对外访问白名单 — what sources, push endpoints and sync targets may reach",
    )
    op.create_table(
        "sign_in_failures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column(
            "name_digest",
            sa.String(length=64),
            nullable=False,
            comment="SM3 of the name as typed, lower-case (known or not)",
        ),
        sa.Column("address", sa.String(length=64), nullable=False, comment="client address"),
        sa.Column(
            "failed_at", kuaishu.db.UTCDateTime(timezone=True), nullable=False, comment="(UTC)"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sign_in_failures")),
        comment="failed sign-ins of the last window, for throttling",
    )
    with op.batch_alter_table("sign_in_failures", schema=None) as batch_op:
        batch_op.create_index(
            "ix_sign_in_failures_address_time", ["address", "failed_at"], unique=False
        )
        batch_op.create_index(
            "ix_sign_in_failures_name_address", ["name_digest", "address"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("sign_in_failures", schema=None) as batch_op:
        batch_op.drop_index("ix_sign_in_failures_name_address")
        batch_op.drop_index("ix_sign_in_failures_address_time")

    op.drop_table("sign_in_failures")
    op.drop_table("allowed_destinations")

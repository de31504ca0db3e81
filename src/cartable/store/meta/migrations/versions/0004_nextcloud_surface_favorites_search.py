# SPDX-License-Identifier: EUPL-1.2
"""nextcloud surface: favorites, search

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "favorites",
        sa.Column("user_id", ID, nullable=False),
        sa.Column("node_id", ID, nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_favorites_user_id_users", ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["node_id"], ["nodes.id"], name="fk_favorites_node_id_nodes", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("user_id", "node_id", name="pk_favorites"),
    )
    op.create_index("ix_favorites_node_id", "favorites", ["node_id"])
    op.create_index("ix_nodes_space_id_mtime", "nodes", ["space_id", "mtime"])
    op.create_index("ix_nodes_space_id_content_type", "nodes", ["space_id", "content_type"])


def downgrade() -> None:
    op.drop_index("ix_nodes_space_id_content_type", table_name="nodes")
    op.drop_index("ix_nodes_space_id_mtime", table_name="nodes")
    op.drop_index("ix_favorites_node_id", table_name="favorites")
    op.drop_table("favorites")

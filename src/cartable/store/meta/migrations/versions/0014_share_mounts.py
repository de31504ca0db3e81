# SPDX-License-Identifier: EUPL-1.2
"""share_mounts: where a user or group share appears in each recipient's tree

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        'share_mounts',
        sa.Column('id', _ID, autoincrement=True, nullable=False),
        sa.Column('share_id', _ID, nullable=False),
        sa.Column('user_id', _ID, nullable=False),
        sa.Column('parent_id', _ID, nullable=False),
        sa.Column('name', sa.String(length=1024), nullable=False),
        sa.Column('created_at', sa.Float(), nullable=False),
        sa.Column('left_share', sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.ForeignKeyConstraint(['share_id'], ['shares.id'], name=op.f('fk_share_mounts_share_id_shares'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_share_mounts_user_id_users'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_share_mounts')),
        sa.UniqueConstraint('user_id', 'share_id', name=op.f('uq_share_mounts_user_id_share_id')),
        sqlite_autoincrement=True,
    )
    op.create_index('ix_share_mounts_parent_id', 'share_mounts', ['parent_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_share_mounts_parent_id', table_name='share_mounts')
    op.drop_table('share_mounts')

# SPDX-License-Identifier: EUPL-1.2
"""shares: public links today, user and group shares later (one table, Nextcloud's share types)

Revision ID: 0013
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0013'
down_revision = '0011'
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        'shares',
        sa.Column('id', _ID, autoincrement=True, nullable=False),
        sa.Column('node_id', _ID, nullable=False),
        sa.Column('space_id', _ID, nullable=False),
        sa.Column('owner_id', _ID, nullable=False),
        sa.Column('share_type', sa.Integer(), nullable=False),
        sa.Column('share_with', sa.String(length=255), nullable=True),
        sa.Column('token', sa.String(length=64), nullable=True),
        sa.Column('permissions', sa.Integer(), nullable=False),
        sa.Column('password_hash', sa.String(length=255), nullable=True),
        sa.Column('expires_at', sa.Float(), nullable=True),
        sa.Column('download_limit', sa.Integer(), nullable=True),
        sa.Column('download_count', sa.Integer(), nullable=False, server_default=sa.text('0')),
        sa.Column('label', sa.String(length=255), nullable=False, server_default=''),
        sa.Column('note', sa.Text(), nullable=False, server_default=''),
        sa.Column('hide_download', sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column('created_at', sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(['space_id'], ['spaces.id'], name=op.f('fk_shares_space_id_spaces'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['owner_id'], ['users.id'], name=op.f('fk_shares_owner_id_users'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_shares')),
        sa.UniqueConstraint('token', name=op.f('uq_shares_token')),
        sqlite_autoincrement=True,
    )
    op.create_index('ix_shares_node_id', 'shares', ['node_id'], unique=False)
    op.create_index('ix_shares_owner_id', 'shares', ['owner_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_shares_owner_id', table_name='shares')
    op.drop_index('ix_shares_node_id', table_name='shares')
    op.drop_table('shares')

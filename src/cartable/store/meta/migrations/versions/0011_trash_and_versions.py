# SPDX-License-Identifier: EUPL-1.2
"""trash and versions: the trash table, old versions kept (versions.mtime, an index by age), and
the bytes each space's trash and old versions hold (spaces.trash_bytes, spaces.versions_bytes)

Revision ID: 0011
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision = '0009'
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table('spaces') as batch:
        batch.add_column(sa.Column('trash_bytes', sa.BigInteger(), nullable=False, server_default=sa.text('0')))
        batch.add_column(sa.Column('versions_bytes', sa.BigInteger(), nullable=False, server_default=sa.text('0')))
    with op.batch_alter_table('versions') as batch:
        batch.add_column(sa.Column('mtime', sa.Float(), nullable=True))
        batch.create_index('ix_versions_created_at', ['created_at'], unique=False)
    op.create_table(
        'trash',
        sa.Column('id', _ID, autoincrement=True, nullable=False),
        sa.Column('space_id', _ID, nullable=False),
        sa.Column('node_id', _ID, nullable=False),
        sa.Column('parent_id', _ID, nullable=True),
        sa.Column('name', sa.String(length=1024), nullable=False),
        sa.Column('location', sa.Text(), nullable=False),
        sa.Column('kind', sa.String(length=1), nullable=False),
        sa.Column('size', sa.BigInteger(), nullable=False),
        sa.Column('deleted_at', sa.BigInteger(), nullable=False),
        sa.Column('deleted_by', _ID, nullable=True),
        sa.ForeignKeyConstraint(['space_id'], ['spaces.id'], name=op.f('fk_trash_space_id_spaces'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_trash')),
        sa.UniqueConstraint('node_id', name=op.f('uq_trash_node_id')),
        sa.UniqueConstraint('space_id', 'name', 'deleted_at', name=op.f('uq_trash_space_id_name_deleted_at')),
        sqlite_autoincrement=True,
    )
    op.create_index('ix_trash_space_id_deleted_at', 'trash', ['space_id', 'deleted_at'], unique=False)
    op.create_index('ix_trash_deleted_at', 'trash', ['deleted_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_trash_deleted_at', table_name='trash')
    op.drop_index('ix_trash_space_id_deleted_at', table_name='trash')
    op.drop_table('trash')
    with op.batch_alter_table('versions') as batch:
        batch.drop_index('ix_versions_created_at')
        batch.drop_column('mtime')
    with op.batch_alter_table('spaces') as batch:
        batch.drop_column('versions_bytes')
        batch.drop_column('trash_bytes')

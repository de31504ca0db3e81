# SPDX-License-Identifier: EUPL-1.2
"""chunk lifecycle: chunks.dying and chunks.incarnation; the GC index covers dying

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('chunks') as batch:
        batch.drop_index('ix_chunks_gc')
        batch.add_column(sa.Column('dying', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column('incarnation', sa.BigInteger(), nullable=False, server_default=sa.text('0')))
        batch.create_index('ix_chunks_gc', ['dying', 'refcount', 'touched_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('chunks') as batch:
        batch.drop_index('ix_chunks_gc')
        batch.drop_column('incarnation')
        batch.drop_column('dying')
        batch.create_index('ix_chunks_gc', ['refcount', 'touched_at'], unique=False)

# SPDX-License-Identifier: EUPL-1.2
"""authentication hardening: user names unique without regard to case, login counters

Revision ID: 0005
Revises: 0004

``users.name_key`` holds the name with ASCII letters lowercased (login names are ASCII) under a
unique constraint. A database where two names differ only by case cannot be migrated silently:
the upgrade stops with a message naming them, and changes nothing.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from cartable.store.meta.errors import MigrationRefused

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def _refuse_case_collisions() -> None:
    rows = op.get_bind().execute(sa.text(
        "SELECT name FROM users WHERE lower(name) IN "
        "(SELECT lower(name) FROM users GROUP BY lower(name) HAVING count(*) > 1) ORDER BY lower(name), name"
    )).scalars().all()
    if rows:
        names = ", ".join(repr(n) for n in rows)
        raise MigrationRefused(
            f"user names must now be unique without regard to case, and these accounts differ only by case: "
            f"{names}; keep one account of each group and delete the others with the previous cartable "
            f"version (cartable admin user delete NAME), then start again")


def upgrade() -> None:
    _refuse_case_collisions()
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('name_key', sa.String(length=64), nullable=True))
    op.execute("UPDATE users SET name_key = lower(name)")
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.alter_column('name_key', existing_type=sa.String(length=64), nullable=False)
        batch_op.create_unique_constraint(batch_op.f('uq_users_name_key'), ['name_key'])

    op.create_table('login_counters',
    sa.Column('key', sa.LargeBinary(length=32), nullable=False),
    sa.Column('expires_at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_login_counters'))
    )
    with op.batch_alter_table('login_counters', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_login_counters_expires_at'), ['expires_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('login_counters', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_login_counters_expires_at'))
    op.drop_table('login_counters')
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_users_name_key'), type_='unique')
        batch_op.drop_column('name_key')

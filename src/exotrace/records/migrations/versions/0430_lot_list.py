"""lot list: indexes for filtering and sorting lots by status, expiry and creation

Revision ID: 0430
Revises: 0420
Create Date: 2026-12-07 21:20:00
"""

from __future__ import annotations

from alembic import op

revision = '0430'
down_revision = '0420'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('lot', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_lot_status_number'), ['status', 'number'],
                              unique=False)
        batch_op.create_index(batch_op.f('ix_lot_expires_on_number'), ['expires_on', 'number'],
                              unique=False)
        batch_op.create_index(batch_op.f('ix_lot_created_at_number'), ['created_at', 'number'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('lot', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_lot_created_at_number'))
        batch_op.drop_index(batch_op.f('ix_lot_expires_on_number'))
        batch_op.drop_index(batch_op.f('ix_lot_status_number'))

"""workflow: the time a lot was released (``lot.released_at``)

Administrations must lie after their lot's release. Lots released before
this revision get the time of their latest signed release disposition;
a released lot without one keeps ``NULL`` and is refused at administration
until it is released again through the workflow.

Revision ID: 0410
Revises: 0200
Create Date: 2026-12-07 17:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0410'
down_revision = '0400'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('lot', schema=None) as batch_op:
        batch_op.add_column(sa.Column('released_at', sa.DateTime(timezone=True), nullable=True))
    op.execute(
        "UPDATE lot SET released_at = (SELECT max(d.decided_at) FROM lot_disposition d "
        "WHERE d.lot_id = lot.id AND d.action = 'release') WHERE status = 'released'")


def downgrade() -> None:
    with op.batch_alter_table('lot', schema=None) as batch_op:
        batch_op.drop_column('released_at')

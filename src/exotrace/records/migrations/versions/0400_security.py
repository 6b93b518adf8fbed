"""security: account lock-out and password-change columns, keyed signatures, API tokens,
database identity; on PostgreSQL signatures become append-only like the audit trail

Existing ``user_account`` rows get a new stored image (the new columns), so
one audit entry per account records it (actor ``schema upgrade 0400``);
without it every account would differ from its last audited image and be
refused at sign-in.

Revision ID: 0400
Revises: 0200
Create Date: 2026-12-07 17:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0400'
down_revision = '0200'
branch_labels = None
depends_on = None

_PG_APPEND_ONLY = """
CREATE OR REPLACE FUNCTION exotrace_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER signature_no_update_delete BEFORE UPDATE OR DELETE ON signature
    FOR EACH ROW EXECUTE FUNCTION exotrace_append_only();
CREATE TRIGGER signature_no_truncate BEFORE TRUNCATE ON signature
    FOR EACH STATEMENT EXECUTE FUNCTION exotrace_append_only();
"""


def _reaudit_accounts() -> None:
    # Imported here: the audit helpers hash the chain exactly as the application does.
    from exotrace.records._audit import append_audit_entries, audited_image_of_rows
    from exotrace.records._enums import AuditAction
    from exotrace.records._models_auth import User

    conn = op.get_bind()
    audit = sa.table("audit_entry", sa.column("table_name"), sa.column("record_pk"),
                     sa.column("after_json"), sa.column("seq"))
    existing = {c["name"] for c in sa.inspect(conn).get_columns("user_account")}
    cols = [c for c in User.__table__.c if c.name in existing]
    entries = []
    for row in conn.execute(sa.select(*cols).order_by(User.__table__.c.id)):
        pk = str(row.id)
        before = conn.execute(
            sa.select(audit.c.after_json).where(audit.c.table_name == "user_account",
                                                audit.c.record_pk == pk)
            .order_by(audit.c.seq.desc()).limit(1)).scalar()
        entries.append({"table_name": "user_account", "record_pk": pk,
                        "action": AuditAction.UPDATE, "before_json": before,
                        "after_json": audited_image_of_rows(User.__table__, row)})
    append_audit_entries(conn, entries, actor_id=None, actor_name="schema upgrade 0400",
                         reason="schema upgrade 0400: account security columns added")


def upgrade() -> None:
    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.add_column(sa.Column('must_change_password', sa.Boolean(),
                                      server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('demo', sa.Boolean(), server_default=sa.false(),
                                      nullable=False))
        batch_op.add_column(sa.Column('failed_sign_ins', sa.Integer(), server_default='0',
                                      nullable=False))
        batch_op.add_column(sa.Column('failed_since', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('locked_until', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('password_changed_at', sa.DateTime(timezone=True),
                                      nullable=True))
    with op.batch_alter_table('signature', schema=None) as batch_op:
        batch_op.add_column(sa.Column('key_id', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('keyed_hash', sa.String(length=64), nullable=True))
    op.create_table('api_token',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('token_sha256', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], name=op.f('fk_api_token_user_id_user_account')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_token')),
    sa.UniqueConstraint('token_sha256', name=op.f('uq_api_token_token_sha256'))
    )
    with op.batch_alter_table('api_token', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_api_token_user_id'), ['user_id'], unique=False)
    op.create_table('database_identity',
    sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('database_id', sa.String(length=36), nullable=False),
    sa.Column('demo', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_database_identity')),
    sa.UniqueConstraint('database_id', name=op.f('uq_database_identity_database_id'))
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_PG_APPEND_ONLY)
    _reaudit_accounts()


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS signature_no_truncate ON signature")
        op.execute("DROP TRIGGER IF EXISTS signature_no_update_delete ON signature")
        op.execute("DROP FUNCTION IF EXISTS exotrace_append_only()")
    op.drop_table('database_identity')
    with op.batch_alter_table('api_token', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_api_token_user_id'))
    op.drop_table('api_token')
    with op.batch_alter_table('signature', schema=None) as batch_op:
        batch_op.drop_column('keyed_hash')
        batch_op.drop_column('key_id')
    with op.batch_alter_table('user_account', schema=None) as batch_op:
        for name in ('password_changed_at', 'locked_until', 'failed_since', 'failed_sign_ins',
                     'demo', 'must_change_password'):
            batch_op.drop_column(name)

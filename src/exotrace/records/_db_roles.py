"""PostgreSQL: the two-role setup and the checks that the audit protections are in place.

The owner role owns the tables and runs the migrations. The application
connects as another role that may SELECT and INSERT everywhere it needs, may
UPDATE and DELETE ordinary records, but may only INSERT (and SELECT) into
``audit_entry`` and ``signature`` and the database identity: no UPDATE,
DELETE or TRUNCATE, and, not being the owner, it cannot disable the
append-only triggers. (SQLite has no roles: whoever can write the file can
do anything; there the checkpoints are the protection.)
"""

from __future__ import annotations

import re

import sqlalchemy as sa

from ..errors import InvalidInput
from ._audit import AuditFinding

__all__ = ["APPEND_ONLY_TABLES", "APPEND_ONLY_TRIGGERS", "grant_roles", "protection_findings",
           "role_statements"]

#: Tables the application may only append to.
APPEND_ONLY_TABLES = ("audit_entry", "signature")
#: Tables the application may only read and insert into (written once).
_INSERT_ONLY = ("database_identity",)
_READ_ONLY = ("alembic_version",)
#: Triggers that refuse UPDATE/DELETE/TRUNCATE, per table.
APPEND_ONLY_TRIGGERS = {
    "audit_entry": ("audit_entry_no_update_delete", "audit_entry_no_truncate"),
    "signature": ("signature_no_update_delete", "signature_no_truncate"),
}
_ROLE = re.compile(r"[a-z_][a-z0-9_]{0,62}")


def _ident(name: str) -> str:
    if not _ROLE.fullmatch(name or ""):
        raise InvalidInput(f"role name {name!r}: use lower-case letters, digits and '_' "
                           "(at most 63), starting with a letter or '_'")
    return f'"{name}"'


def role_statements(connection: sa.Connection, owner: str, app: str, *,
                    create: bool = True) -> list[str]:
    """The SQL that gives the exotrace tables of the connected database to ``owner`` and
    lets ``app`` use them with append-only rights on the audit trail and signatures."""
    o, a = _ident(owner), _ident(app)
    if owner == app:
        raise InvalidInput("the owner and the application role must differ")
    db = connection.exec_driver_sql("SELECT current_database()").scalar()
    tables = [r[0] for r in connection.exec_driver_sql(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename")]
    sql = []
    if create:
        existing = {r[0] for r in connection.exec_driver_sql("SELECT rolname FROM pg_roles")}
        sql += [f"CREATE ROLE {r} LOGIN" for r, n in ((o, owner), (a, app)) if n not in existing]
    sql += [f'GRANT CONNECT, TEMPORARY ON DATABASE "{db}" TO {a}',
            f"GRANT USAGE, CREATE ON SCHEMA public TO {o}",
            f"GRANT USAGE ON SCHEMA public TO {a}"]
    sql += [f'ALTER TABLE public."{t}" OWNER TO {o}' for t in tables]
    sql += ["ALTER FUNCTION exotrace_audit_append_only() OWNER TO " + o,
            "ALTER FUNCTION exotrace_append_only() OWNER TO " + o]
    for t in tables:
        sql.append(f'REVOKE ALL ON public."{t}" FROM {a}')
        if t in APPEND_ONLY_TABLES or t in _INSERT_ONLY:
            sql.append(f'GRANT SELECT, INSERT ON public."{t}" TO {a}')
        elif t in _READ_ONLY:
            sql.append(f'GRANT SELECT ON public."{t}" TO {a}')
        else:
            sql.append(f'GRANT SELECT, INSERT, UPDATE, DELETE ON public."{t}" TO {a}')
    sql += [f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {a}",
            # Tables a later migration (run as the owner) creates are usable at once;
            # a new append-only table must be narrowed by running this again.
            f"ALTER DEFAULT PRIVILEGES FOR ROLE {o} IN SCHEMA public "
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {a}",
            f"ALTER DEFAULT PRIVILEGES FOR ROLE {o} IN SCHEMA public "
            f"GRANT USAGE, SELECT ON SEQUENCES TO {a}"]
    return sql


def grant_roles(connection: sa.Connection, owner: str, app: str) -> list[str]:
    """Run :func:`role_statements` (as a superuser or the database owner); returns them."""
    sql = role_statements(connection, owner, app)
    for statement in sql:
        connection.exec_driver_sql(statement)
    return sql


def protection_findings(connection: sa.Connection) -> list[AuditFinding]:
    """What is missing of the PostgreSQL protections (empty on SQLite).

    Reports append-only triggers missing or disabled, and a connected role
    that is a superuser, owns (or is a member of the owner of) the append-only
    tables, or may UPDATE, DELETE or TRUNCATE them.
    """
    if connection.dialect.name != "postgresql":
        return []
    findings = []
    rows = connection.exec_driver_sql(
        "SELECT c.relname, t.tgname, t.tgenabled FROM pg_trigger t "
        "JOIN pg_class c ON c.oid = t.tgrelid WHERE NOT t.tgisinternal").all()
    state = {(r[0], r[1]): r[2] for r in rows}
    for table, names in APPEND_ONLY_TRIGGERS.items():
        for name in names:
            enabled = state.get((table, name))
            if enabled is None:
                findings.append(AuditFinding("trigger_missing", table, None, None,
                                             f"append-only trigger {name} on {table} is missing"))
            elif enabled == "D":
                findings.append(AuditFinding("trigger_disabled", table, None, None,
                                             f"append-only trigger {name} on {table} is "
                                             "disabled"))
    me = connection.exec_driver_sql("SELECT current_user").scalar()
    if connection.exec_driver_sql(
            "SELECT rolsuper FROM pg_roles WHERE rolname = current_user").scalar():
        findings.append(AuditFinding("role_superuser", None, None, None,
                                     f"the application connects as superuser {me}; use an "
                                     "application role (exotrace db roles)"))
    for table in APPEND_ONLY_TABLES:
        owner, owns, rights = connection.exec_driver_sql(
            "SELECT tableowner, pg_has_role(current_user, tableowner, 'MEMBER'), "
            "has_table_privilege(current_user, %(t)s, 'UPDATE') "
            "OR has_table_privilege(current_user, %(t)s, 'DELETE') "
            "OR has_table_privilege(current_user, %(t)s, 'TRUNCATE') "
            "FROM pg_tables WHERE schemaname = 'public' AND tablename = %(t)s",
            {"t": table}).one()
        if owns:
            findings.append(AuditFinding(
                "role_owns_tables", table, None, None,
                f"the connected role {me} owns {table} (owner {owner}) and could disable its "
                "triggers; connect as the application role (exotrace db roles)"))
        elif rights:
            findings.append(AuditFinding(
                "role_may_modify", table, None, None,
                f"the connected role {me} may UPDATE, DELETE or TRUNCATE {table}; grant it "
                "SELECT and INSERT only (exotrace db roles)"))
    return findings

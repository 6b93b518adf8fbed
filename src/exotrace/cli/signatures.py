"""``exotrace sign`` and ``exotrace signatures``: electronic signatures on any record."""

from __future__ import annotations

from typing import Annotated

import typer

from ._common import JsonOption, emit
from ._records import UserOption, records_session, signing_password

__all__ = ["register"]


def _record(session, ref: str):
    from ..errors import NotFound
    from ..records import Base
    from .audit import _resolve

    table, pk = _resolve(session, ref)
    for mapper in Base.registry.mappers:
        if mapper.local_table is not None and mapper.local_table.name == table:
            obj = session.get(mapper.class_, int(pk))
            if obj is None:
                raise NotFound(f"no {table} with id {pk}")
            return obj
    raise NotFound(f"no model for table {table}")


def _view(session, sig, record, key) -> dict:
    from ..records import signature_is_current, signature_problems

    problems = signature_problems(sig, key)
    return {"id": sig.id, "record": f"{sig.table_name}:{sig.record_id}",
            "printed_name": sig.printed_name, "meaning": sig.meaning.value,
            "signed_at": sig.signed_at, "content_sha256": sig.content_sha256,
            "key_id": sig.key_id, "keyed_hash_valid": not problems,
            "problems": problems,
            "current": signature_is_current(session, sig, record)}


def register(app: typer.Typer) -> None:
    @app.command("sign")
    def sign_(
        record: Annotated[str, typer.Argument(help="TABLE:ID or TABLE:KEY, e.g. lot:EV-2025-004.")],
        meaning: Annotated[str, typer.Option(help="authorship, review, approval, responsibility.")],
        user: UserOption = None,
        as_json: JsonOption = False,
    ) -> None:
        """Sign a record electronically (the password is asked again at every signing)."""
        from ..records import load_signing_key, sign

        with records_session(user) as (session, acting):
            target = _record(session, record)
            password = signing_password(session, acting.username)
            sig = sign(session, acting, password, target, meaning)
            result = _view(session, sig, target, load_signing_key())
        emit(result, as_json=as_json)

    @app.command("signatures")
    def signatures(
        record: Annotated[str, typer.Argument(help="TABLE:ID or TABLE:KEY.")],
        as_json: JsonOption = False,
    ) -> None:
        """List a record's signatures: whether each keyed hash checks out under the server's
        key and whether the record still has the signed content.

        Exits with code 10 (IntegrityFailure) when a signature's keyed hash does not check out.
        """
        from ..errors import IntegrityFailure
        from ..records import load_signing_key, repositories

        with records_session(None, write=False) as (session, _):
            target = _record(session, record)
            sigs = repositories.signatures_for(session, target.__tablename__, target.id)
            key = load_signing_key()
            result = [_view(session, s, target, key) for s in sigs]
        emit(result, as_json=as_json)
        bad = [p for r in result for p in r["problems"]]
        if bad:
            raise IntegrityFailure(f"{len(bad)} signature(s) cannot be trusted; first: {bad[0]}")

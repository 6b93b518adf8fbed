"""Every text column written through a session passes the shared text rules.

A ``before_flush`` hook checks each new or changed ``String``/``Text`` value of
every model (:func:`exotrace._text.text_problem`): control characters (line
breaks and tabs only in ``Text`` columns) and Unicode direction controls are
refused, and a ``String(n)`` value longer than ``n`` is refused with its limit
instead of being cut (SQLite would store it whole, PostgreSQL would fail).
Services validate their own fields first with friendlier messages; this is
the net under all of them.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import Session

from .._text import text_problem
from ..errors import InvalidInput

__all__ = ["check_text_columns"]


def check_text_columns(obj) -> None:
    """Raise InvalidInput for the first unacceptable text value of ``obj`` (new or changed)."""
    state = sa.inspect(obj)
    for column in state.mapper.columns:
        if not isinstance(column.type, sa.String):
            continue
        key = state.mapper.get_property_by_column(column).key
        if state.persistent and not state.attrs[key].history.has_changes():
            continue
        value = state.attrs[key].value
        if not isinstance(value, str):
            continue
        problem = text_problem(value, max_length=column.type.length,
                               multiline=isinstance(column.type, sa.Text))
        if problem:
            raise InvalidInput(f"{column.table.name}.{column.name} {problem}")


def _before_flush(session: Session, flush_context, instances) -> None:
    for obj in list(session.new) + list(session.dirty):
        check_text_columns(obj)


event.listen(Session, "before_flush", _before_flush)

"""One exception tree for exotrace, mapped once to CLI exit codes and HTTP statuses.

Every error subclasses :class:`ExotraceError` and, where one fits, a builtin
(``ValueError``, ``LookupError``, ``PermissionError``) so callers that only know
the builtin still catch it. Messages are single lines that say what was
expected, where (file, line, field) and what to do.

Tree::

    ExotraceError
    ├── InvalidInput (ValueError)            exit 2, HTTP 422
    │   ├── FileFormatError                  exit 3, HTTP 422  (unreadable / malformed file)
    │   └── UnitError                        exit 2, HTTP 422  (wrong or unknown unit)
    ├── InsufficientData (ValueError)        exit 4, HTTP 422  (too few points/tracks to answer)
    ├── NotFound (LookupError)               exit 5, HTTP 404
    ├── Conflict                             exit 6, HTTP 409  (already exists, stale version)
    ├── AuthError (PermissionError)          exit 7, HTTP 401  (unknown user, wrong password)
    ├── PermissionDenied (PermissionError)   exit 8, HTTP 403  (role, segregation of duties)
    ├── RuleViolation                        exit 9, HTTP 422  (workflow/state machine, consent, spec)
    │   └── ConsentError                     exit 9, HTTP 422
    ├── IntegrityFailure                     exit 10, HTTP 409 (audit chain broken, tampering)
    ├── ConfigurationError                   exit 11, HTTP 500
    └── StorageError                         exit 12, HTTP 503 (database down, full, read-only)
"""

from __future__ import annotations

__all__ = [
    "AuthError",
    "Conflict",
    "ConfigurationError",
    "ConsentError",
    "ExotraceError",
    "FileFormatError",
    "InsufficientData",
    "IntegrityFailure",
    "InvalidInput",
    "NotFound",
    "PermissionDenied",
    "RuleViolation",
    "StorageError",
    "UnitError",
    "exit_code_for",
    "http_status_for",
]


class ExotraceError(Exception):
    """Base of every error exotrace raises on purpose."""

    exit_code: int = 1
    http_status: int = 500

    def __init__(self, message: str) -> None:
        # Keep messages on one line: they are printed as-is by the CLI.
        super().__init__(" ".join(str(message).split()))

    @property
    def message(self) -> str:
        return str(self)


class InvalidInput(ExotraceError, ValueError):
    """An argument or a value is outside what the operation accepts."""

    exit_code = 2
    http_status = 422


class FileFormatError(InvalidInput):
    """A file is missing, truncated or not in the expected format.

    Parameters
    ----------
    path : str
        The file concerned.
    problem : str
        What is wrong, in words.
    line : int, optional
        1-based line (text files) where the problem was seen.
    field : str, optional
        Column, key or section concerned.
    offset : int, optional
        Byte offset (binary files).
    """

    exit_code = 3

    def __init__(
        self,
        path: object,
        problem: str,
        *,
        line: int | None = None,
        field: str | None = None,
        offset: int | None = None,
    ) -> None:
        self.path = str(path)
        self.problem = problem
        self.line = line
        self.field = field
        self.offset = offset
        where = self.path
        if line is not None:
            where += f", line {line}"
        if offset is not None:
            where += f", byte {offset}"
        if field:
            where += f", field {field!r}"
        super().__init__(f"{where}: {problem}")


class UnitError(InvalidInput):
    """A unit is unknown or incompatible with the quantity."""


class InsufficientData(ExotraceError, ValueError):
    """Too little data to compute a trustworthy answer (tracks, points, batches)."""

    exit_code = 4
    http_status = 422


class NotFound(ExotraceError, LookupError):
    """A named record or file does not exist."""

    exit_code = 5
    http_status = 404


class Conflict(ExotraceError):
    """The record already exists or changed since it was read."""

    exit_code = 6
    http_status = 409


class AuthError(ExotraceError, PermissionError):
    """The user is unknown, inactive, or the password is wrong."""

    exit_code = 7
    http_status = 401


class PermissionDenied(ExotraceError, PermissionError):
    """The user lacks the role, or segregation of duties forbids the action."""

    exit_code = 8
    http_status = 403


class RuleViolation(ExotraceError):
    """A business rule or workflow step order forbids the action."""

    exit_code = 9
    http_status = 422


class ConsentError(RuleViolation):
    """A donor's or subject's consent is missing, withdrawn or out of scope."""


class IntegrityFailure(ExotraceError):
    """Stored records fail verification (audit chain broken, row changed behind our back)."""

    exit_code = 10
    http_status = 409


class ConfigurationError(ExotraceError):
    """The installation or settings are wrong (database URL, missing schema)."""

    exit_code = 11
    http_status = 500


class StorageError(ExotraceError):
    """The database cannot be reached, is out of space, or refuses writes (read-only).

    The transaction in progress was rolled back: nothing of it was written.
    """

    exit_code = 12
    http_status = 503


def exit_code_for(error: BaseException) -> int:
    """Process exit code for an error (1 for anything not ours)."""
    return error.exit_code if isinstance(error, ExotraceError) else 1


def http_status_for(error: BaseException) -> int:
    """HTTP status for an error (500 for anything not ours)."""
    return error.http_status if isinstance(error, ExotraceError) else 500

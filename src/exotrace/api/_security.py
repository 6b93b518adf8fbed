"""Security headers on every response (pure ASGI middleware: no per-request overhead of
Starlette's BaseHTTPMiddleware)."""

from __future__ import annotations

import json
import re

__all__ = ["CONTENT_SECURITY_POLICY", "FORM_MAX_BYTES", "LimitFormBodies",
           "RefuseControlCharacters", "SecurityHeaders"]

#: No inline script or style, nothing from another origin, no framing.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'self'; "
    "form-action 'self'; frame-ancestors 'none'")

_HEADERS = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
]


class SecurityHeaders:
    """Adds the headers above; pages (not static files) are also marked ``no-store``."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = scope.get("path", "").startswith("/static/")

        async def send_with_headers(message) -> None:
            if message["type"] == "http.response.start":
                headers = [h for h in message.get("headers", [])
                           if h[0].lower() not in {k for k, _ in _HEADERS}]
                headers += _HEADERS
                if not static:
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


_CONTROL_ESCAPE = re.compile(rb"%(?:[01][0-9a-fA-F]|7[fF])")


def _has_control(text: str) -> bool:
    return any(ord(ch) < 32 or ord(ch) == 127 for ch in text)


class RefuseControlCharacters:
    """Refuse (422) a path or query with control characters (NUL, line breaks, ...): no
    identifier or filter has them, PostgreSQL cannot even compare them, and SQLite would
    answer such a search differently -- one answer for every backend."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and (_has_control(scope.get("path", ""))
                                        or _CONTROL_ESCAPE.search(scope.get("query_string", b""))):
            body = json.dumps({"type": "about:blank", "title": "Invalid input", "status": 422,
                               "detail": "the path or query contains a control character "
                                         "(such as NUL or a line break); nothing was done"}
                              ).encode()
            await send({"type": "http.response.start", "status": 422,
                        "headers": [(b"content-type", b"application/problem+json"),
                                    (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)


#: Largest form body (URL-encoded or multipart) accepted: the largest form is the stability
#: upload (1 MiB of CSV); files of any size go to ``PUT /api/v1/uploads`` as a raw body.
FORM_MAX_BYTES = 4 * 1024 ** 2
_FORM_TYPES = (b"multipart/form-data", b"application/x-www-form-urlencoded")


async def _refuse(send, status: int, title: str, detail: str) -> None:
    body = json.dumps({"type": "about:blank", "title": title, "status": status,
                       "detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/problem+json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


class LimitFormBodies:
    """Refuse a form body larger than :data:`FORM_MAX_BYTES` (413) or without a length (411)
    before anything reads it: the form parser spools every file part to disk, and it runs
    before the route (the CSRF check, the sign-in form), even for a caller not signed in."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and scope.get("method") not in ("GET", "HEAD", "OPTIONS"):
            headers = dict(scope.get("headers") or [])
            if headers.get(b"content-type", b"").lower().startswith(_FORM_TYPES):
                length = headers.get(b"content-length", b"")
                if not length.isdigit():
                    await _refuse(send, 411, "Length required",
                                  "a form must be sent with its Content-Length; nothing was done")
                    return
                if int(length) > FORM_MAX_BYTES:
                    await _refuse(send, 413, "Content too large",
                                  f"a form larger than {FORM_MAX_BYTES} bytes is not accepted; "
                                  "upload files with PUT /api/v1/uploads; nothing was done")
                    return
        await self.app(scope, receive, send)

"""Every route x every role: allowed, or 403 with no data.

The permission each route needs is read from the application itself (the
``exotrace_permission`` of its dependency), so a route added later is in the
matrix without editing this file; a route with no declared guard must be one
of the few public ones.
"""

from __future__ import annotations

import re

import pytest
from fastapi.routing import APIRoute

from web.conftest import ROLES_USERS, sign_in

#: Routes anyone may reach without signing in.
PUBLIC = {("GET", "/login"), ("POST", "/login"), ("GET", "/password"), ("POST", "/password"),
          ("GET", "/api/openapi.json"), ("GET", "/api/docs")}
_UNSET = object()


def _guard(route: APIRoute):
    """The permission the route's guard declares (None: any signed-in user), or _UNSET."""
    stack = list(route.dependant.dependencies)
    while stack:
        dep = stack.pop()
        if hasattr(dep.call, "exotrace_permission"):
            return dep.call.exotrace_permission
        stack.extend(dep.dependencies)
    return _UNSET


def _routes(app):
    for route in app.routes:
        if isinstance(route, APIRoute):
            for method in sorted(route.methods - {"HEAD"}):
                yield method, route


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "X-1", path)


def test_every_route_is_guarded_or_public(app):
    unguarded = [(m, r.path) for m, r in _routes(app)
                 if _guard(r) is _UNSET and (m, r.path) not in PUBLIC]
    assert unguarded == []


def test_guarded_routes_refuse_anonymous_callers(client, app):
    for method, route in _routes(app):
        if _guard(route) is _UNSET:
            continue
        response = client.request(method, _concrete(route.path))
        if route.path.startswith("/api/"):
            assert response.status_code == 401, (method, route.path)
        else:
            assert response.status_code in (303, 401), (method, route.path)
            assert "/login" in response.headers.get("location", "/login")


@pytest.mark.parametrize("role", sorted(ROLES_USERS))
def test_route_role_matrix(app, role):
    from fastapi.testclient import TestClient

    from exotrace.records import ROLE_PERMISSIONS, Role

    granted = ROLE_PERMISSIONS[Role(role)]
    with TestClient(app, raise_server_exceptions=False, follow_redirects=False) as client:
        csrf = sign_in(client, ROLES_USERS[role])
        checked = 0
        for method, route in _routes(app):
            permission = _guard(route)
            if permission is _UNSET or permission is None or route.path == "/logout":
                continue
            response = client.request(method, _concrete(route.path),
                                      headers={"X-CSRF-Token": csrf})
            checked += 1
            if permission in granted:
                assert response.status_code != 403, (role, method, route.path, response.text)
                assert response.status_code < 500, (role, method, route.path, response.text)
            else:
                assert response.status_code == 403, (role, method, route.path)
                body = response.text
                # A refusal names the missing permission and nothing of the record asked for.
                assert "X-1" not in body, (role, method, route.path)
                if route.path.startswith("/api/"):
                    assert set(response.json()) == {"type", "title", "status", "detail"}
        assert client.get("/api/v1/me").json()["role"] == role

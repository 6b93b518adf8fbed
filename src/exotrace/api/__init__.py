"""exotrace.api: the web server: FastAPI app factory, authentication, CSRF, problem+json.

Routes (JSON under ``/api/v1`` here, pages in :mod:`exotrace.web`) parse the
request, call the same services as the CLI through :class:`Context`, and render.
"""

from ._app import ROUTER_MODULES, create_app
from ._context import Context, context
from ._principal import Principal, require
from ._settings import WebSettings

__all__ = ["ROUTER_MODULES", "Context", "Principal", "WebSettings", "context", "create_app",
           "require"]

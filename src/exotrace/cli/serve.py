"""``exotrace serve``: the web application and the JSON API on one server."""

from __future__ import annotations

from typing import Annotated

import typer

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    @app.command("serve")
    def serve(
        host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
        port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8000,
        proxy_headers: Annotated[bool, typer.Option(
            help="Trust X-Forwarded-Proto/For from a reverse proxy on this machine "
                 "(HTTPS: Secure cookies).")] = False,
    ) -> None:
        """Serve the web application and the JSON API.

        Serves the database at EXOTRACE_DATABASE_URL in a browser (pages) and to scripts
        (/api/v1, OpenAPI at /api/openapi.json, docs at /api/docs). Refuses a database whose
        schema is not at the latest revision.
        """
        import uvicorn

        from ..api import create_app
        from ..records import get_settings

        application = create_app()  # ConfigurationError (one line) when not at head
        typer.echo(f"exotrace: serving {_safe_url(get_settings().resolved_database_url)} "
                   f"at http://{host}:{port}/ (Ctrl+C to stop)", err=True)
        uvicorn.run(application, host=host, port=port, proxy_headers=proxy_headers,
                    forwarded_allow_ips="127.0.0.1" if proxy_headers else None,
                    log_level="warning", access_log=False)


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)

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
        workers: Annotated[int, typer.Option(
            min=1, max=64, help="Server processes (more than 1 needs EXOTRACE_UPLOAD_DIR: "
                                "the processes share uploads and NTA jobs through it).")] = 1,
    ) -> None:
        """Serve the web application and the JSON API.

        Serves the database at EXOTRACE_DATABASE_URL in a browser (pages) and to scripts
        (/api/v1, OpenAPI at /api/openapi.json, docs at /api/docs). Refuses a database whose
        schema is not at the latest revision.
        """
        import uvicorn

        from ..api import WebSettings, create_app
        from ..errors import ConfigurationError
        from ..records import get_settings

        application = create_app()  # ConfigurationError (one line) when not at head
        if workers > 1 and WebSettings().upload_dir is None:
            raise ConfigurationError(
                f"--workers {workers}: set EXOTRACE_UPLOAD_DIR to a folder all server "
                "processes can write (uploads and NTA jobs are kept there)")
        typer.echo(f"exotrace: serving {_safe_url(get_settings().resolved_database_url)} "
                   f"at http://{host}:{port}/ with {workers} process"
                   f"{'es' if workers > 1 else ''} (Ctrl+C to stop)", err=True)
        options = dict(host=host, port=port, proxy_headers=proxy_headers,
                       forwarded_allow_ips="127.0.0.1" if proxy_headers else None,
                       log_level="warning", access_log=False)
        if workers == 1:
            uvicorn.run(application, **options)
            return
        # Each process builds its own app (and database pool) from the environment.
        application.state.engine.dispose()
        uvicorn.run("exotrace.api:create_app", factory=True, workers=workers, **options)


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)

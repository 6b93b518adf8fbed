"""A short, self-contained HTML report of an NTA analysis.

The report is rendered from the JSON-ready summary (:meth:`NtaResult.to_dict`),
so it shows exactly what ``exotrace nta analyze --json`` prints.
"""

from __future__ import annotations

import math
from pathlib import Path

from jinja2 import Environment, PackageLoader, select_autoescape

from .. import __version__

__all__ = ["render_report_html", "write_report_html"]


def _fmt(value, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def render_report_html(summary: dict, *, title: str = "sample", plot_src: str | None = None) -> str:
    """Render the report.

    Parameters
    ----------
    summary : dict
        ``NtaResult.to_dict()``.
    title : str
        Sample name shown in the heading.
    plot_src : str, optional
        Relative path (or data URI) of the distribution plot to embed.

    Returns
    -------
    str
        A complete HTML document.
    """
    env = Environment(loader=PackageLoader("exotrace.nta", "templates"),
                      autoescape=select_autoescape(["html", "j2"]))
    template = env.get_template("nta_report.html.j2")
    return template.render(result=summary, title=title, plot_src=plot_src, fmt=_fmt,
                           version=__version__)


def write_report_html(summary: dict, path: str | Path, *, title: str = "sample",
                      plot_src: str | None = None) -> Path:
    """Write :func:`render_report_html` to ``path`` (UTF-8) and return the path."""
    path = Path(path)
    path.write_text(render_report_html(summary, title=title, plot_src=plot_src), encoding="utf-8")
    return path

"""exotrace.web: server-rendered pages (Jinja2 + htmx), static assets shipped in the package.

Pages call the same services as the CLI through :class:`exotrace.api.Context`;
nothing here queries the database or applies a rule.
"""

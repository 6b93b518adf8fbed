"""Strict, safe YAML for the data files users write (studies, specifications, protocols).

PyYAML's safe loader still accepts three things that hurt here: aliases (a few
lines of ``&a [*a, *a, ...]`` expand into gigabytes), duplicate keys (YAML keeps
the last ``upper:`` silently, so a typo changes a limit without a word) and
implicit timestamps (``2026-02-30`` raises inside the constructor instead of
reaching the schema's date validation). :class:`StrictLoader` refuses the first
two and keeps dates as text.
"""

from __future__ import annotations

from typing import Any

import yaml

from .errors import FileFormatError

__all__ = ["StrictLoader", "load_strict_yaml"]


class StrictLoader(yaml.SafeLoader):
    """Safe loader without aliases, without duplicate keys, with dates as text."""

    def compose_node(self, parent, index):  # noqa: D102 - PyYAML hook
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None, None, "YAML aliases (*name) are not allowed here; write the value out",
                event.start_mark)
        return super().compose_node(parent, index)

    def construct_mapping(self, node, deep=False):  # noqa: D102 - PyYAML hook
        seen: dict[object, int] = {}
        for key_node, _ in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else id(key_node)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (first on line {seen[key]})",
                    key_node.start_mark)
            seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep)


StrictLoader.yaml_implicit_resolvers = {
    key: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def load_strict_yaml(text: str, *, source: str, what: str = "file") -> Any:
    """Parse ``text`` with :class:`StrictLoader`; every failure is a one-line FileFormatError.

    Parameters
    ----------
    text : str
        The YAML document.
    source : str
        File name (or ``<string>``) for messages.
    what : str
        What the document is ("protocol", "specification"), for messages.
    """
    try:
        return yaml.load(text, Loader=StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except RecursionError:
        raise FileFormatError(source, f"YAML nested too deeply for a {what}") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = " ".join(str(exc.problem or exc.context or "syntax error").split())
        raise FileFormatError(source, f"not valid YAML: {problem}",
                              line=None if mark is None else mark.line + 1) from None
    except yaml.YAMLError as exc:  # reader errors: control characters, bad encodings
        raise FileFormatError(source, f"not valid YAML: {' '.join(str(exc).split())}") from None

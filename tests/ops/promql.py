"""What the ops checks need to know about PromQL and about the bridge's metrics.

``series_names`` lists every series name the bridge's registry can expose (``_total``,
``_bucket``, ``_info``, ... included); ``metric_names`` pulls the metric names out of a PromQL
expression, well enough for the expressions of our alert rules and dashboard.
"""

from __future__ import annotations

import re

from bridge import metrics

# Series name suffixes of each metric family type, as prometheus_client exposes them.
_SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("", "_count", "_sum", "_created"),
    "info": ("_info",),
    "stateset": ("",),
    "enum": ("",),
    "unknown": ("",),
}

_KEYWORDS = {
    "and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right",
    "bool", "offset", "atan2", "inf", "nan",
}  # fmt: skip

# Pieces of an expression that hold no metric names: strings, label matchers, range and
# subquery selectors, label lists of by/without/on/ignoring/group_*, and Grafana variables.
_NOT_NAMES = [
    re.compile(r'"(?:[^"\\]|\\.)*"'),
    re.compile(r"'(?:[^'\\]|\\.)*'"),
    re.compile(r"\{[^}]*\}"),
    re.compile(r"\[[^\]]*\]"),
    re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)"),
    re.compile(r"\$\{?\w+\}?"),
]
_IDENTIFIER = re.compile(r"(?<![\w.])([A-Za-z_:][\w:]*)(\s*\()?")


def series_names() -> set[str]:
    """Every series name the bridge's metrics expose (the family plus its typed suffixes)."""
    names = set()
    for family in metrics.create().registry.collect():
        names.update(family.name + suffix for suffix in _SUFFIXES[family.type])
    return names


def metric_names(expr: str) -> set[str]:
    """The metric names an expression selects (identifiers that are not functions/keywords)."""
    for pattern in _NOT_NAMES:
        expr = pattern.sub(" ", expr)
    names = set()
    for match in _IDENTIFIER.finditer(expr):
        name, call = match.group(1), match.group(2)
        if call is None and name.lower() not in _KEYWORDS:
            names.add(name)
    return names

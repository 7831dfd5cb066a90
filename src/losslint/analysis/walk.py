"""A fast pre-order walk over a libcst tree with enter/leave callbacks.

libcst's own `visit` rebuilds every node as it goes (it serves transformers too) and costs more than parsing;
linting only reads, so this walks the dataclass fields directly, in source order, and skips pure-whitespace fields.
Measured on 38.6k lines (rich): `Module.visit` 3.4 s, this walk 0.6 s.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import libcst as cst

_SKIP_FIELDS = frozenset({
    "lpar", "rpar", "comma", "semicolon", "leading_lines", "lines_after_decorators", "header", "footer", "newline",
    "indent", "colon", "equal", "dot", "star", "whitespace", "whitespace_before", "whitespace_after",
    "whitespace_before_colon", "whitespace_after_colon", "whitespace_before_params", "whitespace_after_def",
    "whitespace_after_name", "whitespace_before_args", "whitespace_after_func", "whitespace_after_star",
    "whitespace_after_import", "whitespace_before_import", "whitespace_after_from", "whitespace_after_class",
    "whitespace_after_at", "whitespace_after_in", "whitespace_before_in", "whitespace_after_for",
    "whitespace_before_for", "whitespace_after_if", "whitespace_before_if", "whitespace_after_with",
    "whitespace_after_lambda", "whitespace_after_return", "whitespace_after_del", "whitespace_after_assert",
    "whitespace_after_raise", "whitespace_after_global", "whitespace_after_nonlocal", "whitespace_after_await",
    "whitespace_after_walrus", "whitespace_before_walrus", "whitespace_after_yield", "whitespace_after_else",
    "whitespace_before_else", "whitespace_after_except", "whitespace_after_as", "whitespace_before_as",
    "whitespace_after_arg", "whitespace_after_indicator", "whitespace_before_value", "whitespace_after_cases",
    "whitespace_after_case", "whitespace_after_match", "whitespace_after_equal", "whitespace_before_equal",
    "whitespace_before_expression", "whitespace_after_expression", "whitespace_before_from",
    "whitespace_after_type", "whitespace_after_def_keyword",
})
_FIELDS: dict[type, tuple[str, ...]] = {}


def _fields(t: type) -> tuple[str, ...]:
    names = _FIELDS.get(t)
    if names is None:
        names = tuple(f.name for f in dataclasses.fields(t) if f.name not in _SKIP_FIELDS
                      and not f.name.startswith("whitespace"))
        _FIELDS[t] = names
    return names


def walk(root: cst.CSTNode, enter: Callable[[cst.CSTNode], bool | None],
         leave: Callable[[cst.CSTNode], None] | None = None) -> None:
    """Call `enter(node)` in source order (return False to skip the children), then `leave(node)` after them."""
    CSTNode = cst.CSTNode
    stack: list[tuple[cst.CSTNode, bool]] = [(root, False)]
    pop, push = stack.pop, stack.append
    while stack:
        node, leaving = pop()
        if leaving:
            leave(node)  # type: ignore[misc]
            continue
        descend = enter(node)
        if leave is not None:
            push((node, True))
        if descend is False:
            continue
        children: list[cst.CSTNode] = []
        for name in _fields(type(node)):
            v = getattr(node, name)
            if isinstance(v, CSTNode):
                children.append(v)
            elif isinstance(v, (list, tuple)):
                children.extend(x for x in v if isinstance(x, CSTNode))
        for child in reversed(children):
            push((child, False))


class Dispatch:
    """Turns `visit_<Node>` / `leave_<Node>` methods of some objects into per-type handler lists."""

    @staticmethod
    def handlers(obj: object, prefix: str) -> dict[str, Callable[[cst.CSTNode], object]]:
        out = {}
        for attr in dir(type(obj)):
            if attr.startswith(prefix):
                out[attr[len(prefix):]] = getattr(obj, attr)
        return out

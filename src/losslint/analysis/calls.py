"""Call arguments: which expression a call passes for a positional slot, a keyword, or a known parameter.

One place for the lookups every analysis repeats (`tf.clip_by_value(x, lo, hi)`, `compile(loss=...)`, a same-module
helper's argument for its parameter), so they agree on starred arguments and keyword-or-position.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import libcst as cst

if TYPE_CHECKING:
    from losslint.analysis.index import ParamInfo


def positional(call: cst.Call) -> list[cst.BaseExpression]:
    """The positional arguments, in order; `*args` is left out (its length is unknown)."""
    return [a.value for a in call.args if a.keyword is None and not a.star]


def kwarg(call: cst.Call, *names: str) -> cst.BaseExpression | None:
    """The value of the first keyword argument spelled as one of `names`."""
    for a in call.args:
        if a.keyword is not None and a.keyword.value in names:
            return a.value
    return None


def arg(call: cst.Call, keyword: str, position: int) -> cst.BaseExpression | None:
    """An argument passed by keyword, else at `position` among the positional ones."""
    v = kwarg(call, keyword)
    if v is not None:
        return v
    pos = positional(call)
    return pos[position] if len(pos) > position else None


def later_arg(call: cst.Call, rest: list[cst.BaseExpression], i: int, keywords: tuple[str, ...]
              ) -> cst.BaseExpression | None:
    """An op's argument after its tensor: by one of `keywords`, else `rest[i]` (`rest`: the positional arguments
    after the tensor, which for a method call is the receiver)."""
    v = kwarg(call, *keywords)
    if v is not None:
        return v
    return rest[i] if len(rest) > i else None


def bound_arg(call: cst.Call, param: ParamInfo) -> cst.BaseExpression | None:
    """The argument a call binds to a parameter; None when a `*args` makes the position unknowable."""
    v = kwarg(call, param.name)
    if v is not None:
        return v
    if param.position >= 0:
        pos = positional(call)
        if len(pos) > param.position and not any(a.star for a in call.args):
            return pos[param.position]
    return None


__all__ = ["arg", "bound_arg", "kwarg", "later_arg", "positional"]


def int_literal(node: cst.BaseExpression | None) -> int | None:
    """The value of an integer literal, negated ones included (`2`, `-1`, `0x20`, `1_000`), else None."""
    if isinstance(node, cst.Integer):
        return int(node.evaluated_value)
    if isinstance(node, cst.UnaryOperation) and isinstance(node.operator, cst.Minus) \
            and isinstance(node.expression, cst.Integer):
        return -int(node.expression.evaluated_value)
    return None


def int_literals(node: cst.BaseExpression | None) -> list[int] | None:
    """An integer literal, or a list/tuple of them (an `axis=`), as a list; None if anything else is in it."""
    v = int_literal(node)
    if v is not None:
        return [v]
    if isinstance(node, (cst.List, cst.Tuple)):
        out: list[int] = []
        for el in node.elements:
            inner = int_literals(el.value)
            if inner is None:
                return None
            out.extend(inner)
        return out
    return None

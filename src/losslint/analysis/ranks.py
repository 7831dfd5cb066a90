"""Tensor ranks that are provable from the code itself.

Only absolute ranks are tracked: a tensor's rank is known when the code fixes it (`tf.reshape(x, [-1, 1])`,
`x.view(-1)`, `x.flatten()`, a literal constructor `torch.zeros(n, 1)`), and then followed through the ops whose
output rank follows from their input's (`squeeze(x, axis)`, `expand_dims`, `unsqueeze`, `x[:, None]`, `x[:, 0]`,
reductions with an explicit `axis` and no `keepdims`, `one_hot`, `argmax`, elementwise ops, names assigned once).
Everything else (a parameter, a model output, a `squeeze()` without an axis, an index by a tensor) is unknown: rules
report only what these facts prove.
"""

from __future__ import annotations

import libcst as cst

from losslint.analysis.calls import int_literal, kwarg, positional
from losslint.analysis.facts import Facts, assigned_value
from losslint.analysis.index import ModuleIndex, StmtInfo, operand

_ELEMENTWISE_UNARY = frozenset({
    "log", "log2", "log10", "log1p", "exp", "expm1", "sqrt", "rsqrt", "square", "abs", "negative", "reciprocal",
    "sigmoid", "softmax", "log_softmax", "log_sigmoid", "relu", "softplus", "cast", "clip", "nan_to_num", "pow",
})
_ELEMENTWISE_BINARY = frozenset({"add", "subtract", "multiply", "divide", "maximum", "minimum"})
_REDUCTIONS = frozenset({"sum", "mean", "max", "min", "prod", "std", "var", "logsumexp"})
_AXIS_KW = ("axis", "dim", "axes", "reduction_indices")
_KEEP_KW = ("keepdims", "keepdim", "keep_dims")


def _is_true(node: cst.BaseExpression | None) -> bool:
    return isinstance(node, cst.Name) and node.value == "True"


class Ranks:
    """Rank facts for one module."""

    def __init__(self, index: ModuleIndex, facts: Facts) -> None:
        self.index = index
        self.facts = facts

    def rank(self, expr: cst.BaseExpression, stmt: StmtInfo | None, depth: int = 0) -> int | None:
        if stmt is None or depth > 12:
            return None
        if isinstance(expr, (cst.Integer, cst.Float)):
            return 0
        if isinstance(expr, cst.Name):
            got = assigned_value(self.facts, expr.value, stmt)
            return self.rank(got[0], got[1], depth + 1) if got is not None else None
        if isinstance(expr, cst.UnaryOperation):
            return self.rank(expr.expression, stmt, depth + 1)
        if isinstance(expr, cst.BinaryOperation):
            if isinstance(expr.operator, cst.MatrixMultiply):
                return None
            a, b = self.rank(expr.left, stmt, depth + 1), self.rank(expr.right, stmt, depth + 1)
            return max(a, b) if a is not None and b is not None else None
        if isinstance(expr, cst.Subscript):
            return self._subscript(expr, stmt, depth)
        if isinstance(expr, cst.Call):
            return self._call(expr, stmt, depth)
        return None

    def _shape_len(self, shape: cst.BaseExpression, stmt: StmtInfo, depth: int) -> int | None:
        if isinstance(shape, (cst.List, cst.Tuple)):
            if any(isinstance(e, cst.StarredElement) for e in shape.elements):
                return None
            return len(shape.elements)
        if int_literal(shape) is not None:
            return 1
        if isinstance(shape, cst.Attribute) and shape.attr.value == "shape":
            return self.rank(shape.value, stmt, depth + 1)
        if isinstance(shape, cst.Call):
            op = self.index.op_of(shape)
            if op is not None and op.name == "shape" and positional(shape):
                return self.rank(positional(shape)[0], stmt, depth + 1)
        return None

    def _subscript(self, node: cst.Subscript, stmt: StmtInfo, depth: int) -> int | None:
        base = self.rank(node.value, stmt, depth + 1)
        if base is None:
            return None
        removed = added = explicit = 0
        for el in node.slice:
            s = el.slice
            if isinstance(s, cst.Slice):
                explicit += 1
                continue
            v = s.value
            if isinstance(v, cst.Ellipsis):
                continue
            if isinstance(v, cst.Name) and v.value == "None":
                added += 1
                continue
            if int_literal(v) is not None:
                removed += 1
                explicit += 1
                continue
            return None  # an index by a variable or a tensor: could be an int, a mask or an index array
        if explicit > base:
            return None
        return base - removed + added

    def _call(self, call: cst.Call, stmt: StmtInfo, depth: int) -> int | None:
        func = call.func
        qualified = self.index.qualify(func) or ""
        last = qualified.rsplit(".", 1)[-1] if qualified else (func.attr.value if isinstance(func, cst.Attribute)
                                                               else "")
        is_method = not qualified and isinstance(func, cst.Attribute)
        recv = func.value if is_method else None  # type: ignore[union-attr]
        args = positional(call)
        x = recv if is_method else (args[0] if args else None)
        rest = args if is_method else args[1:]

        def r(e: cst.BaseExpression | None) -> int | None:
            return self.rank(e, stmt, depth + 1) if e is not None else None

        if last in ("reshape", "view"):
            shape = kwarg(call, "shape", "newshape")
            if shape is None and is_method and len(rest) > 1:
                return len(rest) if all(int_literal(a) is not None for a in rest) else None
            if shape is None and rest:
                shape = rest[0]
            return self._shape_len(shape, stmt, depth) if shape is not None else None
        if last in ("view_as", "reshape_as", "expand_as") and is_method and rest:
            return r(rest[0])
        if last in ("ravel",) or (last == "flatten" and qualified.startswith(("keras.backend", "tensorflow.keras.backend",
                                                                                  "numpy", "jax"))):
            return 1
        if last == "flatten" and (is_method or qualified == "torch.flatten"):
            start = kwarg(call, "start_dim")
            if start is None and rest:
                start = rest[0]
            end = kwarg(call, "end_dim") or (rest[1] if len(rest) > 1 else None)
            if start is None and end is None:
                return 1
            s = int_literal(start)
            return s + 1 if s is not None and s >= 0 and end is None else None
        if last in ("squeeze", "expand_dims", "unsqueeze"):
            base = r(x)
            axis = kwarg(call, *_AXIS_KW)
            if axis is None and rest:
                axis = rest[0]
            if base is None or axis is None:
                return None
            n = len(axis.elements) if isinstance(axis, (cst.List, cst.Tuple)) else (
                1 if int_literal(axis) is not None else None)
            if n is None:
                return None
            return base - n if last == "squeeze" else base + n
        if last in ("one_hot", "to_categorical"):
            base = r(x)
            return base + 1 if base is not None else None
        if last in ("argmax", "argmin"):
            base = r(x)
            if base is None or _is_true(kwarg(call, *_KEEP_KW)):
                return base
            axis = kwarg(call, *_AXIS_KW) or (rest[0] if rest else None)
            if axis is None:
                return base - 1 if qualified.startswith("tensorflow") else 0
            return base - 1 if int_literal(axis) is not None else None
        if last in ("zeros", "ones", "empty", "rand", "randn") and (qualified.startswith(("torch", "numpy", "jax",
                                                                                            "tensorflow"))):
            shape = kwarg(call, "shape", "size")
            if shape is None and len(args) > 1 and qualified.startswith("torch"):
                return len(args) if all(int_literal(a) is not None for a in args) else None
            if shape is None and args:
                shape = args[0]
            return self._shape_len(shape, stmt, depth) if shape is not None else None
        op = self.index.op_of(call)
        if op is None:
            return None
        if op.name in _ELEMENTWISE_UNARY or (op.name == "identity" and last in ("float", "double", "half", "to",
                                                                                 "contiguous", "detach", "clone",
                                                                                 "identity", "stop_gradient",
                                                                                 "type_as", "astype")):
            return r(operand(call, op))
        if op.name in _ELEMENTWISE_BINARY:
            a = r(operand(call, op))
            other = kwarg(call, "y", "other") or (rest[0] if rest else None)
            b = r(other)
            return max(a, b) if a is not None and b is not None else None
        if op.name in _REDUCTIONS:
            if op.name in ("max", "min") and (op.is_method or op.qualified.startswith("torch")):
                return None  # torch max(x, dim) returns (values, indices)
            base = r(operand(call, op))
            if base is None:
                return None
            if _is_true(kwarg(call, *_KEEP_KW)):
                return base
            axis = kwarg(call, *_AXIS_KW) or (rest[0] if rest else None)
            if axis is None:
                return 0
            if isinstance(axis, (cst.List, cst.Tuple)):
                return base - len(axis.elements)
            return base - 1 if int_literal(axis) is not None else None
        return None


__all__ = ["Ranks"]

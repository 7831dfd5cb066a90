"""Reductions over the batch axis, and which functions Keras itself calls as a loss.

Used by the batch-reduction rules: a loss Keras calls (passed to `compile`, a Keras `Loss` subclass's `call`, a
function wrapped by `LossFunctionWrapper`) must return one value per sample; a custom training loop must reduce to a
scalar, and under `tf.distribute` must divide by the *global* batch size. This module answers: which reductions make
a function's returned value, over which axis, and does the module weight samples at all.
"""

from __future__ import annotations

from dataclasses import dataclass

import libcst as cst

from losslint.analysis.calls import kwarg, positional
from losslint.analysis.index import FuncInfo, ModuleIndex, StmtInfo, function_named
from losslint.analysis.names import names_in
from losslint.analysis.ops import Op
from losslint.analysis.scopes import ScopeMap

_REDUCE = frozenset({"sum", "mean"})
_PASS_THROUGH = frozenset({"negative", "cast", "identity"})
_AXIS_KEYWORDS = ("axis", "dim", "reduction_indices", "axes")
_KERAS_LOSS_BASES = ("losses.Loss", "losses.loss.Loss", "losses.LossFunctionWrapper",
                     "losses.loss.LossFunctionWrapper", "losses.losses.LossFunctionWrapper")
# Calls whose keywords mean samples are weighted (Keras applies the weights to the per-sample loss vector).
WEIGHT_KEYWORDS = ("sample_weight", "class_weight")


@dataclass(frozen=True)
class BatchReduction:
    """A reduction whose result is (a scalar term of) a returned loss and which reduces over the batch axis."""

    call: cst.Call
    op: Op
    kind: str  # "sum": a plain sum over the batch; "mean": an average (or a sum divided by a count)
    stmt: StmtInfo


def reduce_axis(call: cst.Call, op: Op) -> str:
    """"all" (no axis / axis=None), "batch" (axis includes 0), "other" (non-batch axes only) or "unknown"."""
    axis = kwarg(call, *_AXIS_KEYWORDS)
    if axis is None:
        pos = positional(call)
        rest = pos if op.is_method else pos[1:]
        if any(a.star for a in call.args):
            return "unknown"
        if not rest:
            return "all"
        axis = rest[0]
    if isinstance(axis, cst.Name) and axis.value == "None":
        return "all"
    values = _int_literals(axis)
    if values is None:
        return "unknown"
    return "batch" if 0 in values else "other"


def _int_literals(expr: cst.BaseExpression) -> list[int] | None:
    if isinstance(expr, cst.Integer):
        return [int(expr.value)]
    if isinstance(expr, cst.UnaryOperation) and isinstance(expr.operator, cst.Minus) \
            and isinstance(expr.expression, cst.Integer):
        return [-int(expr.expression.value)]
    if isinstance(expr, (cst.List, cst.Tuple)):
        out: list[int] = []
        for el in expr.elements:
            inner = _int_literals(el.value)
            if inner is None:
                return None
            out.extend(inner)
        return out
    return None


def _is_number(expr: cst.BaseExpression) -> bool:
    if isinstance(expr, (cst.Integer, cst.Float)):
        return True
    if isinstance(expr, cst.UnaryOperation):
        return _is_number(expr.expression)
    return False


class _Tracer:
    def __init__(self, index: ModuleIndex) -> None:
        self.index = index
        self.out: list[BatchReduction] = []
        self.seen: set[int] = set()

    def expr(self, node: cst.BaseExpression, stmt: StmtInfo, divided: bool, depth: int) -> None:
        if depth > 12 or id(node) in self.seen:
            return
        self.seen.add(id(node))
        if isinstance(node, cst.Call):
            op = self.index.op_of(node)
            if op is not None and op.name in _REDUCE:
                axis = reduce_axis(node, op)
                inner = node.func.value if op.is_method and isinstance(node.func, cst.Attribute) else (
                    positional(node)[0] if positional(node) else None)
                if axis in ("all", "batch") and inner is not None and _from_inputs(inner, stmt):
                    kind = "mean" if op.name == "mean" or divided else "sum"
                    self.out.append(BatchReduction(node, op, kind, stmt))
                return
            if op is not None and op.name in _PASS_THROUGH:
                inner = node.func.value if op.is_method and isinstance(node.func, cst.Attribute) else (
                    positional(node)[0] if positional(node) else None)
                if inner is not None:
                    self.expr(inner, stmt, divided, depth + 1)
                return
            callee = function_named(self.index, node.func, stmt)
            if callee is not None and op is None:
                for ret, rstmt in callee.returns:
                    self.expr(ret, rstmt, divided, depth + 1)
            return
        if isinstance(node, cst.UnaryOperation):
            self.expr(node.expression, stmt, divided, depth + 1)
        elif isinstance(node, cst.BinaryOperation):
            if isinstance(node.operator, (cst.Add, cst.Subtract)):
                self.expr(node.left, stmt, divided, depth + 1)
                self.expr(node.right, stmt, divided, depth + 1)
            elif isinstance(node.operator, cst.Multiply):
                self.expr(node.left, stmt, divided, depth + 1)
                self.expr(node.right, stmt, divided, depth + 1)
            elif isinstance(node.operator, cst.Divide):
                # a sum divided by a count (the batch size, a number of elements) is an average
                self.expr(node.left, stmt, divided or not _is_number(node.right), depth + 1)
        elif isinstance(node, cst.IfExp):
            self.expr(node.body, stmt, divided, depth + 1)
            self.expr(node.orelse, stmt, divided, depth + 1)
        elif isinstance(node, cst.Name):
            for d, dstmt in _reaching(stmt, node.value):
                if d is not None:
                    self.expr(d, dstmt, divided, depth + 1)


def _from_inputs(expr: cst.BaseExpression, stmt: StmtInfo) -> bool:
    """Whether `expr` depends on the function's tensor inputs (its positional parameters): a sum over the model's
    weights (a regulariser) is not a reduction over the batch."""
    func = stmt.func
    if func is None:
        return False
    params = {p.name for p in func.params if p.position >= 0}
    seen: set[str] = set()
    work = list(names_in(expr))
    while work:
        name = work.pop()
        if name in seen or len(seen) > 200:
            continue
        seen.add(name)
        if name in params:
            return True
        for d in func.defs.get(name, []):
            if d.stmt is None or d.stmt.index >= stmt.index:
                continue
            value = d.value if d.value is not None else _unpacked_from(d.stmt)
            if value is not None:
                work.extend(names_in(value))
    return False


def _unpacked_from(stmt: StmtInfo) -> cst.BaseExpression | None:
    """The right-hand side of `a, b = value` (whose names the index binds without a value)."""
    node = stmt.node
    if isinstance(node, cst.SimpleStatementLine):
        for small in node.body:
            if isinstance(small, cst.Assign) and any(isinstance(t.target, (cst.Tuple, cst.List))
                                                     for t in small.targets):
                return small.value
    return None


def _reaching(stmt: StmtInfo, name: str) -> list[tuple[cst.BaseExpression | None, StmtInfo]]:
    """The values of the latest assignments to `name` before `stmt` in its function (augmented ones add up)."""
    func = stmt.func
    if func is None:
        return []
    defs = [d for d in func.defs.get(name, []) if d.stmt is not None and d.stmt.index < stmt.index]
    if not defs:
        return []
    out: list[tuple[cst.BaseExpression | None, StmtInfo]] = []
    for d in reversed(defs):
        assert d.stmt is not None
        out.append((d.value, d.stmt))
        if d.kind == "assign" and len(d.stmt.path) <= len(stmt.path) and d.stmt.path == stmt.path[:len(d.stmt.path)]:
            break  # an unconditional assignment on the way: earlier ones are dead
    return out


def batch_reductions(index: ModuleIndex, func: FuncInfo) -> list[BatchReduction]:
    """The reductions over the batch axis that make up what `func` returns (through assignments and helpers)."""
    tracer = _Tracer(index)
    for ret, stmt in func.returns:
        if isinstance(ret, (cst.Tuple, cst.Dict, cst.List)):
            continue
        tracer.expr(ret, stmt, False, 0)
    return tracer.out


def reductions_of(index: ModuleIndex, expr: cst.BaseExpression, stmt: StmtInfo) -> list[BatchReduction]:
    """The reductions over the batch axis that make up the value of `expr` at `stmt` (e.g. a `tape.gradient`
    target), through assignments, scalar arithmetic and same-module helpers."""
    tracer = _Tracer(index)
    tracer.expr(expr, stmt, False, 0)
    return tracer.out


def _is_keras_loss_class(bases: list[str]) -> bool:
    for b in bases:
        if ("keras" in b or b.startswith("tf_keras")) and b.endswith(_KERAS_LOSS_BASES):
            return True
    return False


def keras_called_losses(index: ModuleIndex, scopes: ScopeMap) -> dict[int, tuple[FuncInfo, str]]:
    """Functions Keras calls as a loss, keyed by id of their node: (function, how), how in "compile" |
    "loss-class" | "wrapper". PyTorch modules and custom training loops are not among them."""
    out: dict[int, tuple[FuncInfo, str]] = {}
    for cls in index.classes.values():
        if _is_keras_loss_class(cls.bases):
            m = cls.methods.get("call")
            if m is not None:
                out[id(m.node)] = (m, "loss-class")
    for call, stmt in index.all_calls:
        func = call.func
        qualified = index.qualify(func) or ""
        if isinstance(func, cst.Attribute) and func.attr.value == "compile" and not qualified.startswith("torch"):
            loss = kwarg(call, "loss")
            if loss is None:
                pos = positional(call)
                loss = pos[1] if len(pos) > 1 else None
            how = "compile"
        elif qualified.endswith("LossFunctionWrapper") or (isinstance(func, cst.Name)
                                                            and func.value == "LossFunctionWrapper"):
            loss = kwarg(call, "fn")
            if loss is None:
                pos = positional(call)
                loss = pos[0] if pos else None
            how = "wrapper"
        else:
            continue
        if loss is None:
            continue
        for f in scopes._loss_functions_of(loss, stmt):  # noqa: SLF001 - the same resolution the scopes use
            if f.cls is not None and f.name != "call":
                continue
            if f.cls is not None and not _is_keras_loss_class(f.cls.bases):
                continue
            out.setdefault(id(f.node), (f, how))
    return out


def weights_samples(index: ModuleIndex) -> bool:
    """Whether the module passes per-sample weights anywhere (`fit(..., sample_weight=w)`, `class_weight=...`,
    `loss_obj(y, p, sample_weight=w)`): Keras applies them to the per-sample loss vector."""
    return any(kwarg(call, *WEIGHT_KEYWORDS) is not None for call, _ in index.all_calls)


def fit_batch_size(index: ModuleIndex) -> int | None:
    """The literal `batch_size=` of a `fit(...)` call in the module, if there is exactly one such value."""
    sizes = set()
    for call, _ in index.all_calls:
        if isinstance(call.func, cst.Attribute) and call.func.attr.value in ("fit", "evaluate"):
            b = kwarg(call, "batch_size")
            if isinstance(b, cst.Integer):
                sizes.add(int(b.value))
            elif isinstance(b, cst.Name):
                for d in index.module_defs.get(b.value, []):
                    if isinstance(d.value, cst.Integer):
                        sizes.add(int(d.value.value))
    return sizes.pop() if len(sizes) == 1 else None


__all__ = ["BatchReduction", "WEIGHT_KEYWORDS", "batch_reductions", "fit_batch_size", "keras_called_losses",
           "reduce_axis", "reductions_of", "weights_samples"]

"""Reductions over the batch axis, and which functions Keras itself calls as a loss.

Used by the batch-reduction rules: a loss Keras calls (passed to `compile`, a Keras `Loss` subclass's `call`, a
function wrapped by `LossFunctionWrapper`) must return one value per sample; a custom training loop must reduce to a
scalar, and under `tf.distribute` must divide by the *global* batch size. This module answers: which reductions make
a function's returned value, over which axis, and does the module weight samples at all.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import libcst as cst

from losslint.analysis.calls import arg, int_literals, kwarg, positional
from losslint.analysis.index import FuncInfo, ModuleIndex, StmtInfo, function_named
from losslint.analysis.names import names_in
from losslint.analysis.ops import Op
from losslint.analysis.scopes import ScopeMap
from losslint.analysis.walk import walk

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
    values = int_literals(axis)
    if values is None:
        return "unknown"
    return "batch" if 0 in values else "other"


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


def _registrations(index: ModuleIndex, scopes: ScopeMap) -> list[tuple[FuncInfo, str]]:
    """Every way the module hands a function to Keras as a loss, in order: (function, how). Computed once per module
    (LL201, LL303 and the sample-weight analysis all ask)."""
    got = _REGISTRATIONS_CACHE.get(index)
    if got is None:
        got = _REGISTRATIONS_CACHE[index] = _compute_registrations(index, scopes)
    return got


def _compute_registrations(index: ModuleIndex, scopes: ScopeMap) -> list[tuple[FuncInfo, str]]:
    out: list[tuple[FuncInfo, str]] = []
    hand = hand_called_loss_classes(index)
    for cls in index.classes.values():
        if _is_keras_loss_class(cls.bases) and cls.name not in hand:
            m = cls.methods.get("call")
            if m is not None:
                out.append((m, "loss-class"))
    for call, stmt in index.all_calls:
        func = call.func
        qualified = index.qualify(func) or ""
        if isinstance(func, cst.Attribute) and func.attr.value == "compile" and not qualified.startswith("torch"):
            loss = _compile_loss(call)
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
            out.append((f, how))
    return out


def _compile_loss(call: cst.Call) -> cst.BaseExpression | None:
    return arg(call, "loss", 1)


def keras_called_losses(index: ModuleIndex, scopes: ScopeMap) -> dict[int, tuple[FuncInfo, str]]:
    """Functions Keras calls as a loss, keyed by id of their node: (function, how), how in "compile" |
    "loss-class" | "wrapper". PyTorch modules and custom training loops are not among them: neither is the `call`
    of a Keras Loss subclass that the module only calls by hand in a custom training step (see
    `hand_called_loss_classes`) and never passes to compile."""
    out: dict[int, tuple[FuncInfo, str]] = {}
    for f, how in _registrations(index, scopes):
        out.setdefault(id(f.node), (f, how))
    return out


# ---- custom training steps ----------------------------------------------------------------------------------------
_STEP_METHODS = frozenset({"train_step", "test_step", "predict_step"})


def custom_step_functions(index: ModuleIndex) -> set[int]:
    """ids of the functions that make up a custom training step, and of the same-module functions they call (a few
    levels deep): `train_step` / `test_step` / `predict_step` overrides, `@tf.function`s, functions with a
    `GradientTape` block, functions handed to `strategy.run` / `tf.function`. A loss called there is called by hand
    with whatever tensors the step passes, not by Keras' compiled loss."""
    roots: list[FuncInfo] = []
    for f in index.functions:
        if (f.cls is not None and f.name in _STEP_METHODS) or any(
                d.rsplit(".", 1)[-1] == "function" and d.split(".", 1)[0] in ("tf", "tensorflow")
                for d in f.decorators):
            roots.append(f)
    for w in index.withs:
        if w.stmt.func is not None and any(op.endswith("GradientTape") for op in w.context_ops):
            roots.append(w.stmt.func)
    for call, stmt in index.all_calls:
        q = index.qualify(call.func) or ""
        if q in ("tensorflow.function", "tf.function") or (isinstance(call.func, cst.Attribute)
                                                          and call.func.attr.value == "run"):
            pos = positional(call)
            if pos and isinstance(pos[0], (cst.Name, cst.Attribute)):
                f = function_named(index, pos[0], stmt)
                if f is not None:
                    roots.append(f)
    out: set[int] = set()
    frontier = roots
    for _ in range(5):
        nxt: list[FuncInfo] = []
        for f in frontier:
            if id(f) in out:
                continue
            out.add(id(f))
            for call, stmt in f.calls:
                callee = function_named(index, call.func, stmt)
                if callee is not None and id(callee) not in out:
                    nxt.append(callee)
        frontier = nxt
    return out


def _ancestry(index: ModuleIndex) -> tuple[dict[int, cst.CSTNode], dict[int, FuncInfo | None],
                                           dict[str, list[cst.Name]]]:
    """Parents of every node, the function enclosing every Name, and the Name nodes by value."""
    parents: dict[int, cst.CSTNode] = {}
    enclosing: dict[int, FuncInfo | None] = {}
    names: dict[str, list[cst.Name]] = {}
    stack: list[cst.CSTNode] = []
    funcs: list[FuncInfo | None] = [None]

    def enter(n: cst.CSTNode) -> bool:
        if stack:
            parents[id(n)] = stack[-1]
        stack.append(n)
        if isinstance(n, (cst.FunctionDef, cst.Lambda)):
            funcs.append(index.func_of_node.get(id(n), funcs[-1]))
        elif isinstance(n, cst.Name):
            names.setdefault(n.value, []).append(n)
            enclosing[id(n)] = funcs[-1]
        return True

    def leave(n: cst.CSTNode) -> None:
        stack.pop()
        if isinstance(n, (cst.FunctionDef, cst.Lambda)):
            funcs.pop()

    walk(index.module, enter, leave)
    return parents, enclosing, names


def hand_called_loss_classes(index: ModuleIndex) -> set[str]:
    """Names of the same-module Keras Loss subclasses that the module only calls by hand: every reference to the
    class outside its own body is in a custom training step (`train_step`, a `tf.function`, a `GradientTape`
    function or what they call: `self.loss[BoxIouLoss.__name__](y, p)`), or creates an instance whose every use is
    a call there or at module level (`loss_obj = MyLoss()` ... `loss_obj(y, model(x))` in the step). A class that is
    never referenced, or is referenced anywhere else (`compile(loss=MyLoss())`, a dict handed on, a parameter), is
    taken to be Keras-called. Cached per index."""
    got = _HAND_CACHE.get(index)
    if got is not None:
        return got
    classes = {c.name: c for c in index.classes.values() if _is_keras_loss_class(c.bases)}
    out: set[str] = set()
    if classes:
        steps = custom_step_functions(index)
        parents, enclosing, names = _ancestry(index)

        def in_step(n: cst.CSTNode) -> bool:
            f = enclosing.get(id(n))
            return f is not None and id(f) in steps

        def called_in_step_or_module(n: cst.CSTNode) -> bool:
            par = parents.get(id(n))
            if not (isinstance(par, cst.Call) and par.func is n):
                return False
            f = enclosing.get(id(n)) if isinstance(n, cst.Name) else enclosing.get(id(_head(n)))
            return f is None or id(f) in steps

        def instance_uses(target: cst.BaseExpression) -> list[cst.CSTNode] | None:
            if isinstance(target, cst.Name):
                return [n for n in names.get(target.value, []) if n is not target]
            if isinstance(target, cst.Attribute) and isinstance(target.value, cst.Name) \
                    and target.value.value == "self":
                uses: list[cst.CSTNode] = []
                for n in names.get(target.attr.value, []):
                    par = parents.get(id(n))
                    if isinstance(par, cst.Attribute) and par.attr is n and par is not target \
                            and isinstance(par.value, cst.Name) and par.value.value == "self":
                        uses.append(par)
                return uses
            return None

        for name, cls in classes.items():
            refs = [n for n in names.get(name, []) if not _inside(n, cls.node, parents)]
            if not refs:
                continue
            ok = True
            for ref in refs:
                par = parents.get(id(ref))
                if isinstance(par, cst.Call) and par.func is ref:  # an instance
                    holder = parents.get(id(par))
                    if isinstance(holder, cst.Call) and holder.func is par:  # `MyLoss()(y, p)`
                        ok = called_in_step_or_module(par) or in_step(ref)
                    elif isinstance(holder, cst.Assign) and holder.value is par and len(holder.targets) == 1:
                        uses = instance_uses(holder.targets[0].target)
                        ok = bool(uses) and all(called_in_step_or_module(u) for u in uses)
                    else:
                        ok = False
                else:  # `MyLoss.__name__`, `isinstance(x, MyLoss)`
                    ok = in_step(ref)
                if not ok:
                    break
            if ok:
                out.add(name)
    _HAND_CACHE[index] = out
    return out


_HAND_CACHE: "weakref.WeakKeyDictionary[ModuleIndex, set[str]]" = weakref.WeakKeyDictionary()
_REGISTRATIONS_CACHE: "weakref.WeakKeyDictionary[ModuleIndex, list[tuple[FuncInfo, str]]]" = weakref.WeakKeyDictionary()


def _head(n: cst.CSTNode) -> cst.CSTNode:
    while isinstance(n, cst.Attribute):
        n = n.value
    return n


def _inside(n: cst.CSTNode, ancestor: cst.CSTNode, parents: dict[int, cst.CSTNode]) -> bool:
    cur: cst.CSTNode | None = n
    while cur is not None:
        if cur is ancestor:
            return True
        cur = parents.get(id(cur))
    return False


# ---- sample weights -----------------------------------------------------------------------------------------------
_WEIGHTED_METHODS = frozenset({"fit", "fit_generator", "train_on_batch", "evaluate", "evaluate_generator",
                               "test_on_batch"})


def _weight_arg(call: cst.Call) -> cst.BaseExpression | None:
    """The sample/class weights a call passes (`sample_weight=w`, `class_weight=...`, the third positional argument
    of `train_on_batch` / `test_on_batch`); None when it passes none (`sample_weight=None` passes none)."""
    w = kwarg(call, *WEIGHT_KEYWORDS)
    if w is None and isinstance(call.func, cst.Attribute) and call.func.attr.value in ("train_on_batch",
                                                                                         "test_on_batch"):
        pos = positional(call)
        w = pos[2] if len(pos) > 2 else None
    if isinstance(w, cst.Name) and w.value == "None":
        return None
    return w


@dataclass(frozen=True)
class Weighting:
    """A call that applies sample weights to a loss: `call` passes them; `how` is "model" (a fit/evaluate of a
    model compiled with the loss), "model-unknown" (a fit/evaluate of a model whose compile the module does not
    show in straight-line code before it) or "direct" (any other call with weights, for a loss Keras can be handed
    weights for directly: a Loss subclass or a wrapped function)."""

    call: cst.Call
    stmt: StmtInfo
    how: str


class SampleWeights:
    """Which weighted calls reach which loss, following each model from its compile to its fit/evaluate calls
    (model_flow's events): the weights of one model's fit say nothing about a loss compiled into another."""

    def __init__(self, index: ModuleIndex, scopes: ScopeMap) -> None:
        from losslint.analysis.model_flow import model_flow

        self.index = index
        self.scopes = scopes
        self.flow = model_flow(index)
        self.calls = [(c, s) for c, s in index.all_calls if _weight_arg(c) is not None]
        self.direct = {id(f.node) for f, how in _registrations(index, scopes) if how != "compile"}
        self._compiled: dict[int, set[int] | None] = {}

    def weighting(self, func: FuncInfo) -> Weighting | None:
        """The first call whose sample weights Keras applies to the values `func` returns, if any."""
        for call, stmt in self.calls:
            is_model = isinstance(call.func, cst.Attribute) and call.func.attr.value in _WEIGHTED_METHODS
            if not is_model:
                if id(func.node) in self.direct:
                    return Weighting(call, stmt, "direct")
                continue
            losses = self._losses_at(call)
            if losses is None:
                return Weighting(call, stmt, "model-unknown")
            if id(func.node) in losses:
                return Weighting(call, stmt, "model")
        return None

    def _losses_at(self, call: cst.Call) -> set[int] | None:
        """ids of the functions compiled as the loss of the model `call` fits/evaluates: the model name's last
        compile before the call in the same region, on a block that encloses it, with no rebinding in between;
        None when that is not provable (a model compiled in a builder function, `self.model.fit`, ...)."""
        if id(call) in self._compiled:
            return self._compiled[id(call)]
        got: set[int] | None = None
        region = self.flow.region_of.get(id(call))
        event = next((e for e in region.events if e.call is call), None) if region is not None else None
        if region is not None and event is not None:
            comps = [e for e in region.events if e.model == event.model and e.kind == "compile"
                     and e.stmt.index < event.stmt.index]
            if comps:
                comp = comps[-1]
                encloses = event.stmt.path[: len(comp.stmt.path)] == comp.stmt.path
                if encloses and not self.flow.defined_between(region, event.model, comp.stmt.index,
                                                              event.stmt.index):
                    loss = _compile_loss(comp.call)
                    got = set() if loss is None else {
                        id(f.node) for f in self.scopes._loss_functions_of(loss, comp.stmt)}  # noqa: SLF001
        self._compiled[id(call)] = got
        return got


def fit_batch_size(index: ModuleIndex) -> int | None:
    """The literal `batch_size=` of a `fit(...)` call in the module, if there is exactly one such value."""
    sizes = set()
    for call, _ in index.all_calls:
        if isinstance(call.func, cst.Attribute) and call.func.attr.value in ("fit", "evaluate"):
            b = kwarg(call, "batch_size")
            if isinstance(b, cst.Integer):
                sizes.add(int(b.evaluated_value))
            elif isinstance(b, cst.Name):
                for d in index.module_defs.get(b.value, []):
                    if isinstance(d.value, cst.Integer):
                        sizes.add(int(d.value.evaluated_value))
    return sizes.pop() if len(sizes) == 1 else None


__all__ = ["BatchReduction", "SampleWeights", "WEIGHT_KEYWORDS", "Weighting", "batch_reductions",
           "custom_step_functions", "fit_batch_size", "hand_called_loss_classes", "keras_called_losses",
           "reduce_axis", "reductions_of"]

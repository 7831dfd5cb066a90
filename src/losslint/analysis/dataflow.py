"""Gradient data flow: does a value depend on the prediction, and does that dependence reach the loss with a gradient?

One question is shared by the autodiff rules (LL401-LL404): "this op is applied to something derived from y_pred (the
differentiable input); does its output reach the returned loss, or the value `.backward()` / `minimize()` /
`tape.gradient()` is called on, and does the loss still have a gradient path that does not go through it?"

Every expression gets a `Dep`:

* `grad`   - it carries a differentiable dependence on the prediction (a `y_pred`/logits parameter, a model output
             `model(x)` / `self.net(x)`, a TF1 variable or layer, a `jax.grad` target's first parameter);
* `tensor` - it is a framework tensor (a label, a mask, any framework op's result): NumPy on it breaks graph mode;
* `cut`    - the ops ("culprits") through which the prediction reaches it *without* a gradient: a comparison, an
             argmax, an int cast (non-differentiable), `.item()` / `.detach()` / `torch.tensor(t)` (autograd breaks),
             NumPy / `float(t)` / `numpy_function` (leaving the framework). Only the first culprit of a chain counts:
             `count_nonzero(equal(round(p), y))` has one culprit, the `round`.

Loss roots are the return values of loss functions (not of metrics, not of helpers: those are reached through their
callers, evaluated with the callers' arguments) and the targets of `.backward()`, `minimize()` and `tape.gradient()`.
A culprit is *dead* when the root's value, or one additive term of it (`ce + lam * penalty`), depends on the
prediction only through culprits: that loss, or that term, has no gradient. A culprit that only weights or selects a
differentiable term (`mask * loss`, `where(p > 0.5, a, b)`, focal weights from `p.detach()`) is not dead: that is how
people deliberately stop gradients.

Everything is computed once per module, on first use, and cached on the module index.
"""

from __future__ import annotations

import re
import weakref
from dataclasses import dataclass, field

import libcst as cst

from losslint.analysis.calls import arg, bound_arg, kwarg, positional
from losslint.analysis.facts import Facts
from losslint.analysis.index import Def, FuncInfo, ModuleIndex, StmtInfo, operand
from losslint.analysis.names import dotted_name, names_in
from losslint.analysis.scopes import LOGIT_NAMES, MASK_NAMES, PRED_NAMES, TRUE_NAMES, ScopeMap, is_loss_name

_MAX_DEPTH = 60


@dataclass(frozen=True)
class Dep:
    grad: bool = False
    tensor: bool = False
    cut: frozenset[int] = frozenset()

    @property
    def dead(self) -> bool:
        """Depends on the prediction only through culprits: no gradient reaches it."""
        return not self.grad and bool(self.cut)

    @property
    def tracked(self) -> bool:
        return self.grad or self.tensor or bool(self.cut)


NONE = Dep()
TENSOR = Dep(tensor=True)
GRAD = Dep(grad=True, tensor=True)


def join(deps) -> Dep:  # type: ignore[no-untyped-def]
    grad = tensor = False
    cut: frozenset[int] = frozenset()
    for d in deps:
        grad = grad or d.grad
        tensor = tensor or d.tensor
        if d.cut:
            cut = cut | d.cut
    return Dep(grad, tensor, cut)


@dataclass(eq=False)
class Culprit:
    """An op that drops the gradient of (or leaves the framework with) a value derived from the prediction."""

    node: cst.CSTNode
    kind: str  # "nondiff" (LL402) | "break" (LL404) | "host" (LL401)
    what: str  # words for messages: "argmax", "a comparison", ".item()", "np.mean", ...
    always: bool = False  # a host op that fails in graph mode / under jax tracing: a bug wherever it reaches the loss
    on_label: bool = False  # applied to a tensor that carries no gradient (graph mode only)


@dataclass(eq=False)
class Finding:
    culprit: Culprit
    reason: str  # "loss" (the whole loss has no gradient) | "term" (one additive term has none) | "graph"

    def consequence(self, whole_loss: str) -> str:
        """What the lost gradient costs: `whole_loss` when the loss has no other path, else the one term's loss."""
        return whole_loss if self.reason == "loss" else "this term of the loss silently contributes no gradient"


@dataclass(eq=False)
class Root:
    expr: cst.BaseExpression
    stmt: StmtInfo
    description: str
    dep: Dep = NONE
    defs: set[int] = field(default_factory=set)  # ids of the Defs whose value flows into it (same function)


# ---- op classification ------------------------------------------------------------------------------------------
_FRAMEWORK_ROOTS = frozenset({"tensorflow", "torch", "jax", "keras", "tf_keras", "flax", "optax", "haiku"})
_HOST_ROOTS = frozenset({"numpy", "scipy", "math", "sklearn", "pandas", "statistics"})
_NUMPY_BACKENDS = ("keras.src.backend.numpy", "keras.backend.numpy")
# NumPy names that do not convert their argument (dtype and shape queries, constants).
_HOST_STATIC = frozenset({"shape", "ndim", "finfo", "iinfo", "dtype", "result_type", "issubdtype", "isscalar",
                          "promote_types", "can_cast", "pi", "e", "inf", "nan", "newaxis", "prod_shape"})
_NONDIFF = frozenset({
    "argmax", "argmin", "round", "rint", "floor", "ceil", "sign", "sgn", "trunc", "fix",
    "equal", "not_equal", "greater", "greater_equal", "less", "less_equal", "eq", "ne", "gt", "ge", "lt", "le",
    "logical_and", "logical_or", "logical_not", "logical_xor", "count_nonzero", "argsort", "isclose",
    "in_top_k", "bucketize", "searchsorted", "heaviside", "histc", "bincount", "to_int32", "to_int64",
})
_NONDIFF_METHODS = _NONDIFF | frozenset({"long", "int", "bool", "byte", "short", "char"})
_STOP = frozenset({"stop_gradient", "stop_gradients"})
# Static queries: Python ints / shapes / dtypes, never a tensor value (`x.size(0)`, `keras.ops.shape(x)`).
_STATIC_OPS = frozenset({"shape", "size", "rank", "ndim", "numel", "shape_n", "dtype", "is_tensor",
                         "is_floating_point", "get_shape", "dim", "ndimension", "device", "int_shape"})
# `tf.shape(x)` and friends are tensors in graph mode (NumPy on them fails), but carry no gradient.
_TF_SHAPE_TENSORS = frozenset({"shape", "size", "rank", "shape_n"})
# Constructors that take only a shape from their argument: a tensor without gradient.
_LIKE_OPS = frozenset({"zeros_like", "ones_like", "empty_like", "full_like", "new_zeros", "new_ones", "new_full",
                       "new_empty", "arange", "range", "eye", "fill", "rand_like", "randn_like"})
_HOST_CALLBACKS = frozenset({"numpy_function", "py_func", "pure_callback", "host_callback", "io_callback"})
_REWRAP = frozenset({"tensor", "Tensor", "FloatTensor", "DoubleTensor", "LongTensor", "HalfTensor"})
# Framework calls that read configuration, not tensors: no evidence that a NumPy function handles tensors (Keras'
# NumPy backend calls `backend.epsilon()`).
_CONFIG_CALLS = frozenset({"epsilon", "floatx", "image_data_format", "standardize_dtype", "standardize_data_format",
                           "result_type", "backend", "is_tensor", "set_floatx", "set_epsilon", "is_keras_tensor",
                           "get_default_graph", "device", "dtype", "is_available", "finfo", "iinfo"})
_BREAK_METHODS = frozenset({"item", "detach", "detach_", "tolist"})
_STATIC_ATTRS = frozenset({"shape", "dtype", "ndim", "device", "name", "is_cuda", "layout", "requires_grad",
                           "grad_fn", "is_leaf"})
_PASS_ATTRS = frozenset({"T", "mT", "H", "real", "imag"})
_SELECTION_METHODS = frozenset({"masked_fill", "masked_fill_", "masked_select", "masked_scatter", "index_select",
                                "gather", "take_along_dim", "index_fill"})
_SELECTION_OPS = frozenset({"boolean_mask", "gather", "gather_nd", "take_along_axis", "take", "masked_select",
                            "index_select", "take_along_dim", "where", "select", "one_hot"})
_STATIC_BUILTINS = frozenset({"len", "range", "isinstance", "str", "type", "print", "repr", "hasattr", "getattr",
                              "id", "callable", "enumerate", "format", "issubclass"})
_PYCONV = frozenset({"float", "int", "complex"})
_INT_DTYPE = re.compile(r"^(?:u?int\d*|long|short|byte|char|bool_?)(?:tensor)?$")
_METRIC_NAME = re.compile(r"(?:^|_)(?:acc|accuracy|metric|metrics|precision|recall|f1|f1score|fbeta|auc|roc|score|"
                          r"hits|mae_metric|top_?k|confusion|iou_score|miou)(?:$|_|s$)")
_HYPER_NAME = re.compile(r"(?:^|_)(?:num|n|size|dim|dims|axis|eps|epsilon|margin|temp|temperature|alpha|beta|gamma|"
                         r"delta|weight|weights|scale|reduction|k|smooth|ignore|index|classes|threshold|thresh|mode|"
                         r"lam|lambda|reduce|dtype|device|class|batch|shape|power|order|kwargs|args|name|mask|"
                         r"sample|step|epoch|config|cfg|params_?dict)(?:$|_|s$)")
_LABEL_NAME = re.compile(r"(?:^|_)(?:labels?|targets?|gt|truth|y_true|classes|indices|idx|tuple)(?:$|_)")
_STRONG_KINDS = frozenset({"compile", "loss-class", "minimize", "backward", "grad-target", "gradient-tape"})
_LOCAL_SOURCE_METHODS = frozenset({"forward", "apply", "predict_step", "call", "__call__"})

# Identity-like ops the terms of a loss are not looked for through: they stop or select the gradient.
_NOT_TRANSPARENT = ("stop_gradient", "detach", "gather", "gather_nd", "boolean_mask", "index_select", "masked_select")

_CACHE: "weakref.WeakKeyDictionary[ModuleIndex, DataFlow]" = weakref.WeakKeyDictionary()


def int_dtype(expr: cst.BaseExpression | None) -> bool:
    """Does a dtype argument name an integer or boolean type (`tf.int32`, `"int64"`, `torch.long`, `bool`)?"""
    if expr is None:
        return False
    if isinstance(expr, cst.SimpleString):
        text = expr.evaluated_value if isinstance(expr.evaluated_value, str) else ""
    else:
        text = dotted_name(expr) or ""
        text = text.rsplit(".", 1)[-1]
    return bool(text) and bool(_INT_DTYPE.match(text.lower()))


def _literal_default(expr: cst.BaseExpression | None) -> bool:
    """A parameter default that says "hyper-parameter": a number, a string, a bool, a tuple of those."""
    if expr is None:
        return False
    if isinstance(expr, (cst.Integer, cst.Float, cst.SimpleString, cst.ConcatenatedString, cst.FormattedString)):
        return True
    if isinstance(expr, cst.UnaryOperation):
        return _literal_default(expr.expression)
    if isinstance(expr, cst.Name) and expr.value in ("True", "False"):
        return True
    if isinstance(expr, (cst.Tuple, cst.List)):
        return all(_literal_default(e.value) for e in expr.elements)
    if isinstance(expr, cst.Attribute):
        return True  # `reduction=Reduction.MEAN`, `dtype=tf.float32`
    return False


class DataFlow:
    """Gradient data flow for one module. Get it with `DataFlow.of(index, scopes, facts)`."""

    def __init__(self, index: ModuleIndex, scopes: ScopeMap, facts: Facts) -> None:
        self.index = index
        self.scopes = scopes
        self.facts = facts
        self.culprits: dict[int, Culprit] = {}
        self._cache: dict[tuple, Dep] = {}
        self._active: set[tuple] = set()
        self._tensor_funcs: dict[int, bool] = {}
        self._frameworks: dict[int, frozenset[str]] = {}
        self._host_wrapped: set[int] | None = None
        self._no_grad_blocks: set[int] | None = None
        self._metric_funcs: set[int] | None = None
        self._run_eagerly: bool | None = None
        self._tf_wrapped: set[int] | None = None
        self._tf1: bool | None = None
        self.roots: list[Root] = []
        self.findings: dict[int, Finding] = {}
        self._computed = False

    @classmethod
    def of(cls, index: ModuleIndex, scopes: ScopeMap, facts: Facts) -> "DataFlow":
        df = _CACHE.get(index)
        if df is None or df.scopes is not scopes:
            df = cls(index, scopes, facts)
            _CACHE[index] = df
        return df

    # ---- public questions ------------------------------------------------------------------------------------
    def finding(self, node: cst.CSTNode, kind: str | None = None) -> Finding | None:
        """The finding for a culprit node (an op that kills the loss's gradient or leaves the graph), if any; with
        `kind`, only a culprit of that kind (each rule reports its own)."""
        self._compute()
        found = self.findings.get(id(node))
        if found is None or (kind is not None and found.culprit.kind != kind):
            return None
        return found

    def dep(self, expr: cst.BaseExpression, stmt: StmtInfo | None) -> Dep:
        """The dependence of an expression in a statement, with the enclosing function's parameters by role."""
        if stmt is None:
            return NONE
        return self._dep(expr, stmt, None, 0)

    def is_torch(self, stmt: StmtInfo | None) -> bool:
        fws = self.frameworks(stmt.func if stmt is not None else None)
        return "torch" in fws and not ({"tensorflow", "keras", "tf_keras", "jax"} & fws)

    def frameworks(self, func: FuncInfo | None) -> frozenset[str]:
        """The frameworks a function's calls use (its own, else its enclosing functions', else the module's)."""
        key = id(func.node) if func is not None else 0
        cached = self._frameworks.get(key)
        if cached is not None:
            return cached
        found: set[str] = set()
        f = func
        while f is not None and not found:
            for call, _ in f.calls:
                q = self.index.qualify(call.func)
                if q is not None:
                    r = q.split(".", 1)[0]
                    if r in _FRAMEWORK_ROOTS and not q.startswith(_NUMPY_BACKENDS):
                        found.add("keras" if r == "tf_keras" else r)
            for dec in f.decorators:
                r = dec.split(".", 1)[0]
                if r in _FRAMEWORK_ROOTS:
                    found.add(r)
            f = f.parent
        if not found:
            found = {r for r in self.index.imports.roots() if r in _FRAMEWORK_ROOTS}
        result = frozenset(found)
        self._frameworks[key] = result
        return result

    def traced(self, func: FuncInfo | None) -> str | None:
        """Why a function runs only at trace time (tf.function, a Keras loss), or None."""
        f = func
        while f is not None:
            for dec in f.decorators:
                if dec.startswith("tensorflow") and dec.endswith(".function"):
                    return "a @tf.function"
            if id(f.node) in self._tf_function_wrapped():
                return "a tf.function"
            f = f.parent
        f = func
        while f is not None:
            scope = self.scopes.scope_of_func(f)
            if scope is not None and scope.kind == "compile" and not self.run_eagerly():
                if not self.is_torch(f.stmt):
                    return "a Keras loss (traced by compile/fit)"
            if scope is not None and scope.kind == "loss-class" and f.cls is not None \
                    and any(("keras" in b or "tensorflow" in b) for b in f.cls.bases) and not self.run_eagerly():
                return "a Keras Loss.call (traced by fit)"
            f = f.parent
        return None

    def graph_mode(self, func: FuncInfo | None, stmt: StmtInfo | None = None) -> bool:
        """Is the code traced into a graph, so that NumPy on any of its tensors fails?"""
        if func is None:
            return self._tf1_graph()
        if self.traced(func) is not None:
            return True
        scope = self.scopes.scope_of_func(func)
        if scope is not None and scope.kind == "minimize":
            return not self.is_torch(func.stmt)
        return False

    def _tf1_graph(self) -> bool:
        """Module-level TF1 graph code: placeholders, sessions, `tf.compat.v1`."""
        if self._tf1 is None:
            self._tf1 = False
            for call, _ in self.index.all_calls:
                q = self.index.qualify(call.func) or ""
                if q.startswith("tensorflow") and (q.endswith((".placeholder", ".Session", ".InteractiveSession",
                                                               ".global_variables_initializer", ".get_variable"))
                                                   or ".compat.v1." in q):
                    self._tf1 = True
                    break
        return self._tf1

    def run_eagerly(self) -> bool:
        if self._run_eagerly is None:
            self._run_eagerly = False
            for call, _ in self.index.all_calls:
                v = kwarg(call, "run_eagerly")
                q = self.index.qualify(call.func) or ""
                if (isinstance(v, cst.Name) and v.value == "True") or (
                        q.endswith("run_functions_eagerly") and call.args and isinstance(call.args[0].value, cst.Name)
                        and call.args[0].value.value == "True"):
                    self._run_eagerly = True
        return self._run_eagerly

    def roots_through(self, name: str, stmt: StmtInfo) -> list[Root]:
        """The loss roots the value `name` has at `stmt` flows into (through assignments in the same function)."""
        self._compute()
        ids = {id(d) for d in self._reaching(name, stmt, after=True)}
        return [r for r in self.roots if ids & r.defs]

    # ---- roots and findings ----------------------------------------------------------------------------------
    def _compute(self) -> None:
        if self._computed:
            return
        self._computed = True
        self._find_roots()
        dead: dict[int, str] = {}
        for root in self.roots:
            root.dep = self._dep(root.expr, root.stmt, None, 0)
            root.defs = self._slice(root.expr, root.stmt)
            if root.dep.dead:
                for c in root.dep.cut:
                    dead.setdefault(c, "loss")
            terms = self._terms(root.expr, root.stmt, 0)
            if len(terms) > 1:
                for term, tstmt in terms:
                    d = self._dep(term, tstmt, None, 0)
                    if d.dead and not self._straight_through(term, terms):
                        for c in d.cut:
                            dead.setdefault(c, "term")
        for cid, reason in dead.items():
            self.findings[cid] = Finding(self.culprits[cid], reason)
        for cid, c in self.culprits.items():
            if c.always and cid not in self.findings:
                self.findings[cid] = Finding(c, "graph")

    def _find_roots(self) -> None:
        seen: set[int] = set()
        for scope in self.scopes.by_func.values():
            func = scope.func
            if func is None or id(func.node) in seen:
                continue
            seen.add(id(func.node))
            if not self._is_loss_root(func, scope.kind):
                continue
            for ret, rstmt in func.returns:
                expr = self._loss_part(ret, rstmt)
                if expr is not None and not _predicate(expr):
                    self.roots.append(Root(expr, rstmt, scope.description))
        for call, stmt in self.index.all_calls:
            target = self._gradient_target(call)
            if target is None:
                continue
            if isinstance(target, cst.Lambda):
                continue
            expr = self._loss_part(target, stmt)
            if expr is not None:
                self.roots.append(Root(expr, stmt, "differentiated value"))

    def _is_loss_root(self, func: FuncInfo, kind: str) -> bool:
        if kind == "helper" or id(func.node) in self.metric_funcs():
            return False
        node = func.node
        if isinstance(node, cst.FunctionDef) and node.returns is not None \
                and dotted_name(node.returns.annotation) in ("float", "int", "bool", "str"):
            return False  # returns a Python number: a cost model or a sort key, never differentiated
        if kind in _STRONG_KINDS:
            return True
        name = func.name if func.name not in ("call", "forward", "__call__") or func.cls is None else func.cls.name
        if _METRIC_NAME.search(_snake(name)) and not is_loss_name(name):
            return False
        if kind == "losses-module" and not is_loss_name(name):
            # a public helper of a losses package (`isnan(x)`, `rectangular_kernel(x)`, `to_tensor(x)`) is reached
            # through the losses that call it; on its own it is a root only if it takes a prediction
            scope = self.scopes.scope_of_func(func)
            return any(role in ("y_pred", "y_logits") for role in (scope.param_roles.values() if scope else ())) \
                or any(p.name.lower() in PRED_NAMES or p.name.lower() in LOGIT_NAMES for p in func.params
                       if p.position >= 0 and p.name.lower() not in ("input", "inputs", "p", "q", "output"))
        return kind == "loss-name" or is_loss_name(name)

    def metric_funcs(self) -> set[int]:
        """Functions passed as `metrics=[...]`: they are never differentiated."""
        if self._metric_funcs is None:
            self._metric_funcs = set()
            for call, stmt in self.index.all_calls:
                m = kwarg(call, "metrics", "weighted_metrics")
                if m is None:
                    continue
                elements = [e.value for e in m.elements] if isinstance(m, (cst.List, cst.Tuple)) else [m]
                for el in elements:
                    f = self.facts.callee(cst.Call(func=el), stmt) if isinstance(el, (cst.Name, cst.Attribute)) \
                        else None
                    if f is not None:
                        self._metric_funcs.add(id(f.node))
        return self._metric_funcs

    def _gradient_target(self, call: cst.Call) -> cst.BaseExpression | None:
        func = call.func
        if not isinstance(func, cst.Attribute):
            return None
        attr = func.attr.value
        qualified = self.index.qualify(func) or ""
        if attr == "backward":
            if qualified.startswith("torch.autograd"):
                return arg(call, "tensors", 0)
            if call.args and not self._is_tensor_receiver(func.value, call):
                return arg(call, "loss", 0)  # accelerator.backward(loss), fabric.backward(loss)
            target = func.value
            if isinstance(target, cst.Call) and isinstance(target.func, cst.Attribute) \
                    and target.func.attr.value == "scale" and target.args:
                target = target.args[0].value
            return target
        if attr == "minimize":
            return arg(call, "loss", 0)
        if attr == "gradient" and not qualified:
            return arg(call, "target", 0)
        return None

    def _is_tensor_receiver(self, receiver: cst.BaseExpression, call: cst.Call) -> bool:
        """`out.backward(grad_out)`: the receiver is the tensor, the argument its gradient."""
        if kwarg(call, "gradient") is not None:
            return True
        for c, stmt in self.index.all_calls:
            if c is call:
                return self._dep(receiver, stmt, None, 0).tracked
        return False

    def _loss_part(self, expr: cst.BaseExpression, stmt: StmtInfo) -> cst.BaseExpression | None:
        """The loss in a returned value: the first element of `(loss, aux)` (jax `has_aux`, a module returning its
        logs), the "loss" entry of a dict. A tuple with a differentiable element beyond the first is not a
        `(loss, aux)` pair (`(irls_weights, costs)`): it has no single loss to judge."""
        if isinstance(expr, (cst.Tuple, cst.List)):
            if not expr.elements:
                return None
            if any(self._dep(e.value, stmt, None, 0).grad for e in expr.elements[1:]):
                return None
            return self._loss_part(expr.elements[0].value, stmt)
        if isinstance(expr, cst.Dict):
            for el in expr.elements:
                if isinstance(el, cst.DictElement) and isinstance(el.key, cst.SimpleString) \
                        and "loss" in str(el.key.evaluated_value):
                    return el.value
            return None
        return expr

    def _terms(self, expr: cst.BaseExpression, stmt: StmtInfo, depth: int) -> list[tuple[cst.BaseExpression, StmtInfo]]:
        """The additive terms of a loss value, through names, sums, negation, scaling by constants and reductions."""
        if depth > 12:
            return [(expr, stmt)]
        if isinstance(expr, cst.BinaryOperation):
            op = expr.operator
            if isinstance(op, (cst.Add, cst.Subtract)):
                return self._terms(expr.left, stmt, depth + 1) + self._terms(expr.right, stmt, depth + 1)
            if isinstance(op, (cst.Multiply, cst.Divide)):
                left, right = self._dep(expr.left, stmt, None, 0), self._dep(expr.right, stmt, None, 0)
                if not right.grad and not right.cut:
                    return self._terms(expr.left, stmt, depth + 1)
                if isinstance(op, cst.Multiply) and not left.grad and not left.cut:
                    return self._terms(expr.right, stmt, depth + 1)
            return [(expr, stmt)]
        if isinstance(expr, cst.UnaryOperation) and isinstance(expr.operator, (cst.Minus, cst.Plus)):
            return self._terms(expr.expression, stmt, depth + 1)
        if isinstance(expr, cst.Call):
            op = self.index.op_of(expr)
            if op is not None and (op.name in ("sum", "mean", "cast") or (
                    op.name == "identity" and not op.qualified.endswith(_NOT_TRANSPARENT))):
                inner = operand(expr, op)
                if inner is not None:
                    return self._terms(inner, stmt, depth + 1)
            if op is not None and op.name == "add" and len(positional(expr)) == 2 and not op.is_method:
                a, b = positional(expr)
                return self._terms(a, stmt, depth + 1) + self._terms(b, stmt, depth + 1)
            q = self.index.qualify(expr.func) or ""
            name = q.rsplit(".", 1)[-1] if q else (expr.func.value if isinstance(expr.func, cst.Name) else "")
            args = positional(expr)
            if name in ("add_n", "sum") and len(args) == 1 and isinstance(args[0], (cst.List, cst.Tuple)) \
                    and (q or name == "sum"):
                out: list[tuple[cst.BaseExpression, StmtInfo]] = []
                for el in args[0].elements:
                    out.extend(self._terms(el.value, stmt, depth + 1))
                return out
            return [(expr, stmt)]
        if isinstance(expr, cst.Name):
            defs = self._reaching(expr.value, stmt)
            last = defs[0] if defs else None
            if last is None or last.stmt is None or last.value is None:
                return [(expr, stmt)]
            if len(defs) == 1 and last.kind == "assign":
                return self._terms(last.value, last.stmt, depth + 1)
            if last.kind == "aug" and isinstance(last.operator, (cst.AddAssign, cst.SubtractAssign)):
                # `loss += term`: the terms so far, plus this one
                return self._terms(expr, last.stmt, depth + 1) + self._terms(last.value, last.stmt, depth + 1)
        return [(expr, stmt)]

    def _straight_through(self, term: cst.BaseExpression, terms) -> bool:  # type: ignore[no-untyped-def]
        """`y_hard - y_soft.detach() + y_soft`, `x + stop_gradient(q - x)`: a detached term beside its live twin."""
        inner = term
        if isinstance(inner, cst.Call):
            q = self.index.qualify(inner.func) or ""
            if q.rsplit(".", 1)[-1] in _STOP and inner.args:
                inner = inner.args[0].value
            elif isinstance(inner.func, cst.Attribute) and inner.func.attr.value in ("detach", "detach_"):
                inner = inner.func.value
            else:
                return False
        else:
            return False
        return True if isinstance(inner, cst.BinaryOperation) else any(
            t is not term and t.deep_equals(inner) for t, _ in terms)

    def _slice(self, expr: cst.BaseExpression, stmt: StmtInfo) -> set[int]:
        out: set[int] = set()
        work: list[tuple[cst.BaseExpression, StmtInfo]] = [(expr, stmt)]
        seen_defs: set[int] = set()
        while work and len(seen_defs) < 500:
            e, s = work.pop()
            for name in names_in(e):
                for d in self._reaching(name, s):
                    if id(d) in seen_defs:
                        continue
                    seen_defs.add(id(d))
                    out.add(id(d))
                    if d.value is not None and d.stmt is not None:
                        work.append((d.value, d.stmt))
                    if d.kind in ("aug", "store") and d.stmt is not None:
                        work.append((cst.Name(d.name), d.stmt))
        return out

    # ---- reaching definitions --------------------------------------------------------------------------------
    def _reaching(self, name: str, stmt: StmtInfo, after: bool = False) -> list[Def]:
        """Definitions of `name` that reach `stmt` (`after`: including one made by `stmt` itself)."""
        func = stmt.func
        use_index = stmt.index + (1 if after else 0)
        while func is not None:
            defs = func.defs.get(name)
            if defs:
                return self._pick(defs, use_index, stmt.path)
            use_index = 1 << 60
            func = func.parent
        defs = self.index.module_defs.get(name)
        if defs:
            return self._pick(defs, use_index if stmt.func is None else 1 << 60, stmt.path)
        return []

    def _pick(self, defs: list[Def], use_index: int, use_path: tuple[int, ...]) -> list[Def]:
        before = [d for d in defs if d.index < use_index]
        out: list[Def] = []
        for d in reversed(before):
            if self._exclusive(d.path, use_path):
                continue
            out.append(d)
            if d.path == use_path[: len(d.path)] and d.kind not in ("aug", "store"):
                break
            if d.kind in ("aug", "store"):
                break  # an update reads the earlier value itself
        return out

    def _exclusive(self, a: tuple[int, ...], b: tuple[int, ...]) -> bool:
        for x, y in zip(a, b):
            if x != y:
                chain = self.index.branch_chain.get(x)
                return chain is not None and chain == self.index.branch_chain.get(y)
        return False

    # ---- evaluation ------------------------------------------------------------------------------------------
    def _dep(self, node: cst.BaseExpression, stmt: StmtInfo, env: tuple | None, depth: int) -> Dep:
        if depth > _MAX_DEPTH:
            return NONE
        key = (id(node), stmt.index, env)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        if key in self._active:
            return NONE
        self._active.add(key)
        try:
            result = self._eval(node, stmt, env, depth + 1)
        finally:
            self._active.discard(key)
        self._cache[key] = result
        return result

    def _eval(self, node: cst.BaseExpression, stmt: StmtInfo, env: tuple | None, depth: int) -> Dep:
        ev = lambda n: self._dep(n, stmt, env, depth)  # noqa: E731
        if isinstance(node, cst.Name):
            if node.value in ("True", "False", "None"):
                return NONE
            return self._name(node.value, stmt, env, depth)
        if isinstance(node, (cst.Integer, cst.Float, cst.Imaginary, cst.SimpleString, cst.ConcatenatedString,
                             cst.Ellipsis, cst.Lambda)):
            return NONE
        if isinstance(node, cst.FormattedString):
            return join(ev(p.expression) for p in node.parts if isinstance(p, cst.FormattedStringExpression))
        if isinstance(node, cst.BinaryOperation):
            return join((ev(node.left), ev(node.right)))
        if isinstance(node, cst.UnaryOperation):
            return ev(node.expression)
        if isinstance(node, cst.BooleanOperation):
            return join((ev(node.left), ev(node.right)))
        if isinstance(node, cst.Comparison):
            if any(isinstance(c.operator, (cst.Is, cst.IsNot, cst.In, cst.NotIn)) for c in node.comparisons):
                return NONE  # `t.grad is None`, `k in d`: Python-level checks, not tensor ops
            parts = [ev(node.left)] + [ev(c.comparator) for c in node.comparisons]
            return self._culprit(node, "nondiff", "a comparison", parts, stmt)
        if isinstance(node, cst.IfExp):
            return self._select([ev(node.body), ev(node.orelse)], [ev(node.test)])
        if isinstance(node, (cst.Tuple, cst.List, cst.Set)):
            return join(ev(e.value) for e in node.elements)
        if isinstance(node, cst.Dict):
            return join(ev(e.value) for e in node.elements if isinstance(e, cst.DictElement))
        if isinstance(node, (cst.GeneratorExp, cst.ListComp, cst.SetComp)):
            return self._comprehension(node, stmt, env, depth)
        if isinstance(node, cst.Subscript):
            base = ev(node.value)
            selectors = []
            for el in node.slice:
                s = el.slice
                if isinstance(s, cst.Index):
                    selectors.append(ev(s.value))
            return self._select([base], selectors)
        if isinstance(node, cst.Attribute):
            return self._attribute(node, stmt, env, depth)
        if isinstance(node, cst.Call):
            return self._call(node, stmt, env, depth)
        if isinstance(node, cst.NamedExpr):
            return ev(node.value)
        if isinstance(node, cst.Await):
            return ev(node.expression)
        return NONE

    def _select(self, data: list[Dep], selectors: list[Dep]) -> Dep:
        """`where(c, a, b)`, `x[idx]`, `gather(x, idx)`: the selector decides which elements, the data carries the
        gradient. A selector's culprits matter only when no data operand has a gradient."""
        d = join(data)
        s = join(selectors)
        if d.grad:
            return Dep(True, True, d.cut)
        return Dep(False, d.tensor or s.tensor or s.grad, d.cut | s.cut)

    def _comprehension(self, node, stmt: StmtInfo, env: tuple | None, depth: int) -> Dep:  # type: ignore[no-untyped-def]
        bound: dict[str, Dep] = dict(env[1]) if env is not None and env[0] == _fid(stmt.func) else {}
        comp = node.for_in
        while comp is not None:
            d = self._dep(comp.iter, stmt, env, depth)
            for n in names_in(comp.target):
                bound[n] = d
            comp = comp.inner_for_in
        new_env = (_fid(stmt.func), frozenset(bound.items()))
        return self._dep(node.elt, stmt, new_env, depth)

    def _name(self, name: str, stmt: StmtInfo, env: tuple | None, depth: int) -> Dep:
        if env is not None and env[0] == _fid(stmt.func):
            for k, v in env[1]:
                if k == name:
                    return v
        defs = self._reaching(name, stmt)
        if not defs:
            return NONE
        return join(self._def_dep(d, stmt, env, depth) for d in defs)

    def _def_dep(self, d: Def, use: StmtInfo, env: tuple | None, depth: int) -> Dep:
        owner = self._owner(d, use)
        if d.kind == "param":
            if owner is None:
                return NONE
            if env is not None and env[0] == _fid(owner):
                return NONE  # a parameter the call did not bind: its default
            return self._param(owner, d.name)
        if d.stmt is None:
            return NONE
        denv = env if env is not None and env[0] == _fid(d.stmt.func) else None
        if d.value is None:
            v = self._unbound_value(d)
            result = self._dep(v, d.stmt, denv, depth) if v is not None else NONE
        else:
            result = self._dep(d.value, d.stmt, denv, depth)
        if d.kind in ("aug", "store"):
            prev = self._name(d.name, d.stmt, denv, depth + 1)
            result = join((prev, result))
        if result.grad and self._in_no_grad(d.stmt):
            result = Dep(False, True, result.cut)
        return result

    def _owner(self, d: Def, use: StmtInfo) -> FuncInfo | None:
        f = use.func
        while f is not None:
            if d in f.defs.get(d.name, ()):
                return f
            f = f.parent
        return None

    def _unbound_value(self, d: Def) -> cst.BaseExpression | None:
        """The value behind a binding the index stored without one: `for x in xs`, `a, b = f(x)`."""
        node = d.stmt.node if d.stmt is not None else None
        if isinstance(node, cst.For):
            return node.iter if d.name in names_in(node.target) else None
        if isinstance(node, cst.SimpleStatementLine):
            for small in node.body:
                if isinstance(small, cst.Assign):
                    for t in small.targets:
                        if isinstance(t.target, (cst.Tuple, cst.List)) and d.name in names_in(t.target):
                            return small.value
        return None

    def _in_no_grad(self, stmt: StmtInfo) -> bool:
        if self._no_grad_blocks is None:
            self._no_grad_blocks = set()
            for w in self.index.withs:
                if any(op.endswith(("no_grad", "inference_mode")) for op in w.context_ops):
                    self._no_grad_blocks.add(id(w.node.body))
        return any(b in self._no_grad_blocks for b in stmt.path)

    def _param(self, func: FuncInfo, name: str) -> Dep:
        """A parameter's dependence by its role in the loss, when nothing binds it."""
        param = next((p for p in func.params if p.name == name), None)
        if param is None or not self.tensor_function(func):
            return NONE
        if _literal_default(param.default):
            return NONE
        if isinstance(param.default, cst.Name) and param.default.value == "None":
            return TENSOR  # an optional argument (weights, reference labels, masks), not the prediction
        scope = self.scopes.scope_of_func(func)
        role = scope.param_roles.get(name) if scope is not None else None
        if role in ("y_pred", "y_logits"):
            return GRAD
        if role == "y_true":
            return TENSOR
        if scope is None:
            # not a loss (a factory around one, a training utility): only a traced function's inputs are tensors
            return TENSOR if self.traced(func) is not None else NONE
        if scope.kind == "helper" or param.position < 0:
            return TENSOR
        if scope.kind == "grad-target":
            return GRAD if param.position == 0 else TENSOR
        lname = name.lower()
        if lname in TRUE_NAMES or lname in MASK_NAMES or _LABEL_NAME.search(lname):
            return TENSOR
        if scope.param_roles:
            return NONE  # beside (y_true, y_pred): a hyper-parameter bound by a closure or functools.partial
        if lname in PRED_NAMES or lname in LOGIT_NAMES:
            return GRAD
        if scope.kind in ("gradient-tape", "minimize", "backward"):
            return TENSOR  # a training step's inputs are data
        return NONE if _HYPER_NAME.search(lname) else GRAD

    def tensor_function(self, func: FuncInfo) -> bool:
        """Are this function's parameters framework tensors (not NumPy arrays of a NumPy-only loss)?"""
        key = id(func.node)
        cached = self._tensor_funcs.get(key)
        if cached is not None:
            return cached
        result = self._tensor_function(func)
        self._tensor_funcs[key] = result
        return result

    def _tensor_function(self, func: FuncInfo) -> bool:
        if id(func.node) in self.host_wrapped():
            return False
        scope = self.scopes.scope_of_func(func)
        if scope is not None and scope.kind in _STRONG_KINDS:
            return True
        if self.traced(func) is not None:
            return True
        host = False
        for call, _ in func.calls:
            q = self.index.qualify(call.func)
            if q is not None and q.split(".", 1)[0] in _FRAMEWORK_ROOTS and not q.startswith(_NUMPY_BACKENDS) \
                    and q.rsplit(".", 1)[-1] not in _CONFIG_CALLS:
                return True
            if q is not None and (q.split(".", 1)[0] in _HOST_ROOTS or q.startswith(_NUMPY_BACKENDS)):
                host = True
        # only tensor methods and operators (`(pred > 0.5).float().sum()`): tensors, unless NumPy is called
        return not host

    def host_wrapped(self) -> set[int]:
        """Functions run by `tf.numpy_function` / `py_function` / `pure_callback`: they see NumPy arrays."""
        if self._host_wrapped is None:
            self._host_wrapped = set()
            for call, stmt in self.index.all_calls:
                q = self.index.qualify(call.func) or ""
                if q.rsplit(".", 1)[-1] in _HOST_CALLBACKS | {"py_function"}:
                    fn = arg(call, "func", 0)
                    if fn is not None and isinstance(fn, (cst.Name, cst.Attribute)):
                        f = self.facts.callee(cst.Call(func=fn), stmt)
                        if f is not None:
                            self._host_wrapped.add(id(f.node))
        return self._host_wrapped

    def _tf_function_wrapped(self) -> set[int]:
        """Functions passed to `tf.function(f)` rather than decorated."""
        if self._tf_wrapped is None:
            self._tf_wrapped = set()
            for call, stmt in self.index.all_calls:
                q = self.index.qualify(call.func) or ""
                if q.startswith("tensorflow") and q.endswith(".function"):
                    fn = arg(call, "func", 0)
                    if isinstance(fn, (cst.Name, cst.Attribute)):
                        f = self.facts.callee(cst.Call(func=fn), stmt)
                        if f is not None:
                            self._tf_wrapped.add(id(f.node))
        return self._tf_wrapped

    # ---- attributes and calls --------------------------------------------------------------------------------
    def _attribute(self, node: cst.Attribute, stmt: StmtInfo, env: tuple | None, depth: int) -> Dep:
        attr = node.attr.value
        if self.index.qualify(node) is not None:
            return NONE  # tf.float32, np.pi, math.e
        if attr in _STATIC_ATTRS:
            return NONE
        if isinstance(node.value, cst.Name) and node.value.value in ("self", "cls"):
            return NONE
        base = self._dep(node.value, stmt, env, depth)
        if attr == "data" and base.grad and self.is_torch(stmt):
            return self._culprit(node, "break", "`.data`", [base], stmt)
        return base

    def _call(self, node: cst.Call, stmt: StmtInfo, env: tuple | None, depth: int) -> Dep:
        ev = lambda n: self._dep(n, stmt, env, depth)  # noqa: E731
        func = node.func
        args = [a.value for a in node.args]
        qualified = self.index.qualify(func)
        if qualified is not None:
            return self._qualified_call(node, qualified, args, stmt, env, depth)
        if isinstance(func, cst.Name):
            name = func.value
            callee = self.facts.callee(node, stmt)
            if callee is not None:
                return self._helper(node, callee, stmt, env, depth)
            if name in _STATIC_BUILTINS:
                return NONE
            if name in _PYCONV or name == "bool":
                parts = [ev(a) for a in args[:1]]
                return self._culprit(node, "host", f"`{name}()`", parts, stmt, pyconv=True)
            if name == "round":
                return self._culprit(node, "nondiff", "`round()`", [ev(a) for a in args[:1]], stmt)
            if name in ("sum", "abs", "max", "min", "list", "tuple", "sorted", "reversed", "map", "zip", "dict",
                        "iter", "next", "pow", "divmod"):
                return join(ev(a) for a in args)
            if name in self.index.classes:
                return join(ev(a) for a in args)
            return self._source(args, ev, stmt)
        if isinstance(func, cst.Attribute):
            method = func.attr.value
            receiver = func.value
            if isinstance(receiver, cst.Name) and receiver.value in ("self", "cls"):
                callee = self.facts.callee(node, stmt)
                if callee is not None:
                    return self._helper(node, callee, stmt, env, depth)
                return self._source(args, ev, stmt)
            if dotted_name(receiver) is not None and dotted_name(receiver).split(".", 1)[0] == "self":  # type: ignore[union-attr]
                return self._source(args, ev, stmt)  # self.backbone.head(x): a sub-module
            recv = ev(receiver)
            if method in _LOCAL_SOURCE_METHODS and not recv.tracked:
                return self._source(args, ev, stmt)
            return self._method(node, method, recv, args, stmt, ev)
        if isinstance(func, cst.Call):
            inner_q = self.index.qualify(func.func) or ""
            if inner_q.rsplit(".", 1)[-1] in ("vmap", "jit", "checkpoint", "remat", "function", "partial"):
                return join(ev(a) for a in args + [a.value for a in func.args])
            return self._source(args, ev, stmt)  # Dense(1)(x), model(params)(x)
        return join(ev(a) for a in args)

    def _source(self, args: list[cst.BaseExpression], ev, stmt: StmtInfo) -> Dep:  # type: ignore[no-untyped-def]
        """A call of a model-like callable (`model(x)`, `self.net(x)`, `criterion(out, y)`): its output carries a
        gradient from the model's weights, unless an argument already tells us what flows through it."""
        d = join(ev(a) for a in args)
        if d.grad or d.cut:
            return Dep(d.grad, True, d.cut)
        if stmt.func is not None and not self.tensor_function(stmt.func):
            return d  # inside a NumPy-only function
        return GRAD

    def _method(self, node: cst.Call, method: str, recv: Dep, args: list[cst.BaseExpression], stmt: StmtInfo,
                ev) -> Dep:  # type: ignore[no-untyped-def]
        if method in _STATIC_OPS:
            return NONE
        if method in _LIKE_OPS:
            return TENSOR if recv.tensor or recv.grad else NONE
        if method in _BREAK_METHODS:
            if method in ("item", "tolist"):
                return self._culprit(node, "break", f"`.{method}()`", [recv], stmt, torch_only=True)
            return self._culprit(node, "break", f"`.{method}()`", [recv], stmt, torch_only=True, stop=True)
        if method == "numpy":
            if self.is_torch(stmt):
                return self._culprit(node, "break", "`.numpy()`", [recv], stmt, torch_only=True)
            return self._culprit(node, "host", "`.numpy()`", [recv], stmt)
        if method == "new_tensor" and args:
            return self._culprit(node, "break", "`.new_tensor(t)`", [ev(args[0])], stmt, torch_only=True)
        if method in _NONDIFF_METHODS:
            parts = [recv] + [ev(a) for a in positional(node)]
            return self._culprit(node, "nondiff", f"`.{method}()`", parts, stmt)
        if method in ("to", "type", "astype") and any(int_dtype(a) for a in args):
            return self._culprit(node, "nondiff", f"a cast to an integer type (`.{method}`)", [recv], stmt)
        if method in _SELECTION_METHODS:
            pos = positional(node)
            if method in ("masked_fill", "masked_fill_", "masked_scatter", "index_fill"):
                data = [recv] + [ev(a) for a in pos[1:]]
                return self._select(data, [ev(a) for a in pos[:1]])
            return self._select([recv], [ev(a) for a in pos])
        if method in ("requires_grad_", "retain_grad"):
            return recv
        return join([recv] + [ev(a) for a in args])

    def _qualified_call(self, node: cst.Call, qualified: str, args: list[cst.BaseExpression], stmt: StmtInfo,
                        env: tuple | None, depth: int) -> Dep:
        ev = lambda n: self._dep(n, stmt, env, depth)  # noqa: E731
        root = qualified.split(".", 1)[0]
        last = qualified.rsplit(".", 1)[-1]
        short = self._short(node)
        if root in _HOST_ROOTS:
            if last in _HOST_STATIC or qualified.startswith("numpy.random"):
                return NONE
            return self._culprit(node, "host", f"`{short}`", [ev(a) for a in args], stmt)
        if root not in _FRAMEWORK_ROOTS:
            callee = self.facts.callee(node, stmt)
            if callee is not None:
                return self._helper(node, callee, stmt, env, depth)
            return join(ev(a) for a in args)  # a helper from another module: what goes in comes out
        if qualified.startswith(_NUMPY_BACKENDS):
            return join(ev(a) for a in args)
        if last in _HOST_CALLBACKS or (last == "py_function" and not self._differentiable_py_function(node, stmt)):
            inputs = [ev(a) for a in args[1:]] if len(positional(node)) > 1 else [
                ev(a.value) for a in node.args if a.keyword is not None and a.keyword.value in ("inp", "args")]
            return self._culprit(node, "host", f"`{short}`", inputs, stmt, callback=True)
        if last in _STOP:
            d = join(ev(a) for a in positional(node)[:1])
            return Dep(False, d.tensor or d.grad, frozenset())
        if last in _STATIC_OPS:
            return TENSOR if root == "tensorflow" and last in _TF_SHAPE_TENSORS else NONE
        if last in _LIKE_OPS:
            return TENSOR
        if last in ("Variable", "get_variable") and root == "tensorflow":
            return GRAD
        if ".layers." in qualified + "." and root in ("tensorflow", "keras", "tf_keras") and last[:1].islower():
            return self._source(args, ev, stmt)  # tf.layers.dense(x, 10): trainable weights
        if last in _REWRAP and root == "torch":
            parts = [ev(a) for a in positional(node)[:1]]
            return self._culprit(node, "break", f"`{short}(...)`", parts, stmt, torch_only=True, rewrap=True)
        if last == "Variable" and root == "torch":
            return join(ev(a) for a in positional(node)[:1])
        if last in ("cast", "to_int32", "to_int64", "as_dtype") or (last == "astype" and root != "torch"):
            dtype = arg(node, "dtype", 1)
            parts = [ev(a) for a in positional(node)[:1]]
            if last in ("to_int32", "to_int64") or int_dtype(dtype):
                return self._culprit(node, "nondiff", f"a cast to an integer type (`{short}`)", parts, stmt)
            return join(parts)
        if last in _NONDIFF:
            return self._culprit(node, "nondiff", f"`{short}`", [ev(a) for a in positional(node)], stmt)
        if last in _SELECTION_OPS:
            pos = positional(node)
            if last in ("where", "select"):
                if len(pos) >= 3:
                    return self._select([ev(pos[1]), ev(pos[2])], [ev(pos[0])])
                return self._culprit(node, "nondiff", f"`{short}` (indices)", [ev(a) for a in pos[:1]], stmt)
            if last == "one_hot":
                return self._select([], [ev(a) for a in pos])
            if pos:
                return self._select([ev(pos[0])], [ev(a) for a in pos[1:]])
        d = join(ev(a) for a in args)
        return Dep(d.grad, True, d.cut)

    def _differentiable_py_function(self, node: cst.Call, stmt: StmtInfo) -> bool:
        """`tf.py_function` is differentiable when the wrapped function runs TensorFlow ops (not NumPy)."""
        fn = arg(node, "func", 0)
        if not isinstance(fn, (cst.Name, cst.Attribute)):
            return False
        f = self.facts.callee(cst.Call(func=fn), stmt)
        if f is None:
            return False
        roots = {(self.index.qualify(c.func) or "").split(".", 1)[0] for c, _ in f.calls}
        return "tensorflow" in roots and not (roots & _HOST_ROOTS)

    def _helper(self, node: cst.Call, callee: FuncInfo, stmt: StmtInfo, env: tuple | None, depth: int) -> Dep:
        if not callee.returns:
            return NONE
        if id(callee.node) in self.host_wrapped():
            return NONE
        bound: dict[str, Dep] = {}
        for p in callee.params:
            a = bound_arg(node, p)
            if a is not None:
                bound[p.name] = self._dep(a, stmt, env, depth)
        new_env = (_fid(callee), frozenset(bound.items()))
        return join(self._dep(ret, rstmt, new_env, depth + 2) for ret, rstmt in callee.returns)

    def _culprit(self, node: cst.CSTNode, kind: str, what: str, parts: list[Dep], stmt: StmtInfo,
                 pyconv: bool = False, torch_only: bool = False, stop: bool = False, rewrap: bool = False,
                 callback: bool = False) -> Dep:
        """The dependence of an op that drops the gradient; registers the op when the prediction reaches it."""
        d = join(parts)
        if torch_only and not self.is_torch(stmt):
            return Dep(d.grad, d.tensor, d.cut)
        graph = self.graph_mode(stmt.func, stmt)
        on_label = kind == "host" and not d.grad and d.tensor and graph
        if d.grad or on_label:
            jax = "jax" in self.frameworks(stmt.func)
            always = kind == "host" and (graph or jax or callback or (not pyconv and self.is_torch(stmt)))
            self.culprits.setdefault(id(node), Culprit(node, kind, what, always, on_label))
            cut = d.cut | {id(node)} if d.grad else d.cut
            return Dep(False, kind != "host", frozenset(cut))
        if kind == "host":
            return Dep(False, False, d.cut)
        if stop:
            return Dep(False, d.tensor, d.cut)
        return Dep(False, d.tensor or d.grad, d.cut)

    def _short(self, node: cst.Call) -> str:
        text = dotted_name(node.func) or "call"
        return text


def _predicate(expr: cst.BaseExpression) -> bool:
    """A returned boolean test (`x != x`, `a and b`, `not c`): a predicate function, not a loss."""
    if isinstance(expr, (cst.Comparison, cst.BooleanOperation)):
        return True
    return isinstance(expr, cst.UnaryOperation) and isinstance(expr.operator, cst.Not)


def _fid(func: FuncInfo | None) -> int:
    return id(func.node) if func is not None else 0


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


__all__ = ["DataFlow", "Dep", "Culprit", "Finding", "Root", "int_dtype", "join"]

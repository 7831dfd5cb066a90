"""Captures: which names a function reads from the scopes around it, what they are bound to, where they change.

A loss function often reads more than its arguments: a Python loss weight from module scope, a model from the
enclosing script, a Keras `Input` from the functional-model code above it. Whether that is a bug depends on what the
name is bound to (a Python scalar, a `tf.Variable`, a Keras model or layer, a symbolic Keras tensor), on whether the
function is traced (Keras compile, a Keras `Loss.call`, `tf.function`, `jax.jit`: the trace captures a Python value
once), and on whether the name is rebound later (`global x; x = ...` in a callback or schedule, a module-level loop
around `fit`, `loss_obj.alpha = ...`).

Built lazily, once per module, by `captures_for(index, scopes)`; everything is computed from the module index.
"""

from __future__ import annotations

import builtins
import weakref
from dataclasses import dataclass, field

import libcst as cst

from losslint.analysis.index import ClassInfo, Def, FuncInfo, ModuleIndex, StmtInfo, function_named
from losslint.analysis.names import dotted_name
from losslint.analysis.scopes import ScopeMap
from losslint.analysis.walk import walk

_BUILTINS = frozenset(dir(builtins))
_KERAS_PREFIXES = ("keras.", "tensorflow.keras.", "tensorflow.python.keras.", "tf_keras.", "tensorflow.compat.v1.keras.",
                   "tensorflow.compat.v2.keras.")
_VARIABLE_NAMES = frozenset({
    "tensorflow.Variable", "tensorflow.compat.v1.Variable", "tensorflow.compat.v2.Variable", "keras.Variable",
    "keras.backend.variable", "tensorflow.keras.backend.variable", "tf_keras.backend.variable",
    "keras.src.backend.Variable", "keras.variables.Variable", "tensorflow.compat.v1.keras.backend.variable",
    "tensorflow.python.keras.backend.variable", "keras.backend.Variable",
})
# Keras layers that own weights: creating one per call gives fresh random weights that are never trained.
WEIGHTED_KERAS_LAYERS = frozenset({
    "Dense", "EinsumDense", "Conv1D", "Conv2D", "Conv3D", "Convolution1D", "Convolution2D", "Convolution3D",
    "Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose", "SeparableConv1D", "SeparableConv2D",
    "DepthwiseConv1D", "DepthwiseConv2D", "Embedding", "BatchNormalization", "LayerNormalization",
    "GroupNormalization", "SimpleRNN", "LSTM", "GRU", "ConvLSTM1D", "ConvLSTM2D", "ConvLSTM3D", "Bidirectional",
    "MultiHeadAttention", "PReLU", "LocallyConnected1D", "LocallyConnected2D", "TimeDistributed",
})
# torch.nn modules that own parameters (InstanceNorm is affine=False by default: none).
WEIGHTED_TORCH_MODULES = frozenset({
    "Linear", "LazyLinear", "Bilinear", "Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d",
    "ConvTranspose3d", "LazyConv1d", "LazyConv2d", "LazyConv3d", "Embedding", "EmbeddingBag", "BatchNorm1d",
    "BatchNorm2d", "BatchNorm3d", "LayerNorm", "GroupNorm", "RMSNorm", "RNN", "LSTM", "GRU", "RNNCell", "LSTMCell",
    "GRUCell", "MultiheadAttention", "PReLU", "Transformer", "TransformerEncoderLayer", "TransformerDecoderLayer",
})
_TORCH_PARAMETER = frozenset({"torch.nn.Parameter", "torch.nn.parameter.Parameter"})
# Attributes of a Keras model or layer that are its symbolic graph tensors.
SYMBOLIC_ATTRS = frozenset({"output", "outputs", "input", "inputs"})
# Calls that run training with the traced function compiled once.
TRAIN_CALLS = frozenset({"fit", "fit_generator", "train_on_batch", "train_step", "train"})
# Calls that make a function a training step rather than a loss.
_STEP_CALLS = frozenset({"gradient", "apply_gradients", "minimize", "backward", "step", "zero_grad"})


def is_keras_name(qualified: str) -> bool:
    return qualified.startswith(_KERAS_PREFIXES)


def _last(qualified: str) -> str:
    return qualified.rsplit(".", 1)[-1]


def _is_keras_layers(qualified: str) -> bool:
    return is_keras_name(qualified) and (".layers." in qualified) and _last(qualified)[:1].isupper()


def _chain(expr: cst.BaseExpression) -> tuple[cst.BaseExpression, list[str]]:
    """Down `a.b[0].c(...).d` to its head: the head and the attribute names met, outermost first."""
    attrs: list[str] = []
    while True:
        if isinstance(expr, cst.Attribute):
            attrs.append(expr.attr.value)
            expr = expr.value
        elif isinstance(expr, cst.Subscript):
            expr = expr.value
        elif isinstance(expr, cst.Call):
            expr = expr.func
        else:
            return expr, attrs


def chain_root(expr: cst.BaseExpression) -> cst.Name | None:
    """The variable at the head of `a.b[0].c(...).d`."""
    head, _ = _chain(expr)
    return head if isinstance(head, cst.Name) else None


def chain_attrs(expr: cst.BaseExpression) -> list[str]:
    """The attribute names along `a.b[0].c(...).d`, innermost first: ["b", "c", "d"]."""
    return list(reversed(_chain(expr)[1]))


@dataclass(eq=False)
class Reads:
    """The loads of one function body (nested defs excluded, nested lambdas included)."""

    names: dict[str, list[cst.Name]] = field(default_factory=dict)
    attributes: list[cst.Attribute] = field(default_factory=list)
    locals: set[str] = field(default_factory=set)  # bound by comprehensions, except-as, imports, lambda params
    globals: set[str] = field(default_factory=set)  # declared `global`
    nonlocals: set[str] = field(default_factory=set)


@dataclass(eq=False)
class Capture:
    """A free name of a function: read in its body, bound in an enclosing function or at module level."""

    name: str
    reads: list[cst.Name]
    owner: FuncInfo | None  # the enclosing function that binds it; None for module scope
    defs: list[Def]

    @property
    def first(self) -> cst.Name:
        return self.reads[0]


@dataclass(eq=False)
class Rebinding:
    """A later assignment to a captured name or attribute that a traced function cannot see."""

    stmt: StmtInfo
    where: str  # for messages: "in `Anneal.on_epoch_end` (a Callback)", "in the training loop"


class _ReadCollector:
    def __init__(self) -> None:
        self.reads = Reads()

    def body(self, func: cst.FunctionDef | cst.Lambda) -> Reads:
        if isinstance(func, cst.Lambda):
            self._lambda_params(func)
            self.expr(func.body)
        else:
            self.node(func.body)
        return self.reads

    def _lambda_params(self, lam: cst.Lambda) -> None:
        p = lam.params
        for param in list(p.posonly_params) + list(p.params) + list(p.kwonly_params):
            self.reads.locals.add(param.name.value)
        for star in (p.star_arg, p.star_kwarg):
            if isinstance(star, cst.Param):
                self.reads.locals.add(star.name.value)

    def expr(self, node: cst.CSTNode) -> None:
        self.node(node)

    def target(self, node: cst.CSTNode) -> None:
        """A store target: names are bound, attribute and subscript bases are read."""
        if isinstance(node, cst.Name):
            return
        if isinstance(node, (cst.Tuple, cst.List)):
            for el in node.elements:
                self.target(el.value)
        elif isinstance(node, cst.StarredElement):
            self.target(node.value)
        elif isinstance(node, cst.Attribute):
            self.node(node.value)
        elif isinstance(node, cst.Subscript):
            self.node(node.value)
            for s in node.slice:
                self.node(s)
        else:
            self.node(node)

    def _bind_names(self, node: cst.CSTNode) -> None:
        if isinstance(node, cst.Name):
            self.reads.locals.add(node.value)
        elif isinstance(node, (cst.Tuple, cst.List)):
            for el in node.elements:
                self._bind_names(el.value)
        elif isinstance(node, cst.StarredElement):
            self._bind_names(node.value)

    def node(self, node: cst.CSTNode) -> None:  # noqa: C901 - one dispatch over node kinds
        r = self.reads
        if isinstance(node, cst.Name):
            r.names.setdefault(node.value, []).append(node)
        elif isinstance(node, cst.Attribute):
            r.attributes.append(node)
            self.node(node.value)
        elif isinstance(node, cst.Arg):
            self.node(node.value)
        elif isinstance(node, cst.AssignTarget):
            self.target(node.target)
        elif isinstance(node, cst.AugAssign):
            self.target(node.target)
            self.node(node.value)
        elif isinstance(node, cst.AnnAssign):
            self.target(node.target)
            if node.value is not None:
                self.node(node.value)
        elif isinstance(node, cst.For):
            self.target(node.target)
            self.node(node.iter)
            self.node(node.body)
            if node.orelse is not None:
                self.node(node.orelse)
        elif isinstance(node, cst.CompFor):
            self._bind_names(node.target)
            self.target(node.target)
            self.node(node.iter)
            for c in node.ifs:
                self.node(c)
            if node.inner_for_in is not None:
                self.node(node.inner_for_in)
        elif isinstance(node, cst.NamedExpr):
            self.target(node.target)
            self.node(node.value)
        elif isinstance(node, cst.FunctionDef):
            for d in node.decorators:
                self.node(d.decorator)
            for p in list(node.params.params) + list(node.params.kwonly_params) + list(node.params.posonly_params):
                if p.default is not None:
                    self.node(p.default)
        elif isinstance(node, cst.ClassDef):
            return
        elif isinstance(node, cst.Lambda):
            inner = _ReadCollector()
            inner.body(node)
            for name, nodes in inner.reads.names.items():
                if name not in inner.reads.locals:
                    r.names.setdefault(name, []).extend(nodes)
            r.attributes.extend(inner.reads.attributes)
        elif isinstance(node, cst.Global):
            r.globals.update(n.name.value for n in node.names)
        elif isinstance(node, cst.Nonlocal):
            r.nonlocals.update(n.name.value for n in node.names)
        elif isinstance(node, (cst.Import, cst.ImportFrom)):
            names = node.names if not isinstance(node.names, cst.ImportStar) else []
            for alias in names:  # type: ignore[union-attr]
                if alias.asname is not None:
                    self._bind_names(alias.asname.name)
                else:
                    head = dotted_name(alias.name)
                    if head:
                        r.locals.add(head.split(".", 1)[0])
        elif isinstance(node, cst.ExceptHandler):
            if node.type is not None:
                self.node(node.type)
            if node.name is not None:
                self._bind_names(node.name.name)
            self.node(node.body)
        elif isinstance(node, cst.WithItem):
            self.node(node.item)
            if node.asname is not None:
                self.target(node.asname.name)
        else:
            for child in node.children:
                self.node(child)


_CACHE: "weakref.WeakKeyDictionary[ModuleIndex, Captures]" = weakref.WeakKeyDictionary()


def captures_for(index: ModuleIndex, scopes: ScopeMap) -> "Captures":
    """The (cached) capture analysis of a module."""
    found = _CACHE.get(index)
    if found is None:
        found = Captures(index, scopes)
        _CACHE[index] = found
    return found


class Captures:
    def __init__(self, index: ModuleIndex, scopes: ScopeMap) -> None:
        self.index = index
        self.scopes = scopes
        self._reads: dict[int, Reads] = {}
        self._traced: dict[int, str] | None = None
        self._module_scan_done = False
        # filled by _scan_module
        self.global_decls: dict[str, list[FuncInfo]] = {}  # name -> functions declaring it global
        self.nonlocal_decls: dict[str, list[FuncInfo]] = {}
        self.attr_stores: list[tuple[cst.Attribute, cst.BaseExpression | None, StmtInfo]] = []
        self.loop_bodies: dict[int, cst.CSTNode] = {}  # id(body block) -> For/While node, anywhere
        roots = index.imports.roots()
        self.uses_tf = bool(roots & {"tensorflow", "keras", "tf_keras"})
        self.uses_torch = "torch" in roots
        self.uses_jax = bool(roots & {"jax", "flax"})

    # ---- reads and free names ----------------------------------------------------------------------------------
    def reads(self, func: FuncInfo) -> Reads:
        key = id(func.node)
        r = self._reads.get(key)
        if r is None:
            r = _ReadCollector().body(func.node)
            self._reads[key] = r
        return r

    def _is_local(self, func: FuncInfo, name: str, reads: Reads) -> bool:
        if name in reads.globals or name in reads.nonlocals:
            return False
        return name in func.defs or name in reads.locals or name in func.nested

    def captures(self, func: FuncInfo) -> list[Capture]:
        """Free names of `func` bound to a variable in an enclosing function or at module level."""
        reads = self.reads(func)
        out: list[Capture] = []
        for name, nodes in reads.names.items():
            if self._is_local(func, name, reads):
                continue
            owner, defs = self.resolve(func, name, module_only=name in reads.globals)
            if not defs:
                continue
            out.append(Capture(name, nodes, owner, defs))
        return out

    def resolve(self, func: FuncInfo | None, name: str, module_only: bool = False) -> tuple[FuncInfo | None, list[Def]]:
        """Where a name that `func` does not bind comes from: the nearest enclosing function binding it, else the
        module. Imports, module functions and classes are not variables: ([], owner None)."""
        if not module_only:
            p = func.parent if func is not None else None
            while p is not None:
                if name in p.nested:
                    return p, []
                if name in p.defs:
                    if name in self.reads(p).globals:
                        break
                    return p, p.defs[name]
                p = p.parent
        if name in self.index.module_functions or name in self.index.classes:
            return None, []
        if self.index.imports.is_module_alias(name) and name not in self.index.module_defs:
            return None, []
        return None, self.index.module_defs.get(name, [])

    def defs_at(self, name: str, stmt: StmtInfo | None) -> list[Def]:
        """The definitions of `name` visible from a statement: its function's, an enclosing one's, or the module's."""
        func = stmt.func if stmt is not None else None
        if func is not None and name in func.defs and name not in self.reads(func).globals:
            return func.defs[name]
        return self.resolve(func, name)[1]

    # ---- what a binding is -------------------------------------------------------------------------------------
    def kind(self, expr: cst.BaseExpression | None, stmt: StmtInfo | None, depth: int = 0) -> str:
        """'scalar', 'variable', 'input', 'symbolic', 'model', 'layer', 'other' or 'unknown'."""
        if expr is None or depth > 8:
            return "unknown"
        if isinstance(expr, (cst.Integer, cst.Float)):
            return "scalar"
        if isinstance(expr, cst.UnaryOperation):
            inner = self.kind(expr.expression, stmt, depth + 1)
            return inner if inner in ("scalar", "symbolic") else "other"
        if isinstance(expr, cst.BinaryOperation):
            a, b = self.kind(expr.left, stmt, depth + 1), self.kind(expr.right, stmt, depth + 1)
            if "symbolic" in (a, b) or "input" in (a, b):
                return "symbolic"
            return "scalar" if a == b == "scalar" else "other"
        if isinstance(expr, cst.Name):
            if expr.value in ("True", "False", "None"):
                return "other"
            defs = self.defs_at(expr.value, stmt)
            kinds = {self.kind(d.value, d.stmt, depth + 1) if d.kind in ("assign", "param") else "unknown"
                     for d in defs}
            for k in ("variable", "input", "symbolic", "model", "layer"):
                if k in kinds:
                    return k
            if kinds == {"scalar"}:
                return "scalar"
            return "other" if kinds else "unknown"
        if isinstance(expr, cst.Attribute):
            if expr.attr.value in SYMBOLIC_ATTRS and self._is_keras_object(expr.value, stmt, depth):
                return "symbolic"
            return "other"
        if isinstance(expr, cst.Subscript):
            base = self.kind(expr.value, stmt, depth + 1)
            if base in ("symbolic", "input"):
                return "symbolic"
            if isinstance(expr.value, cst.Attribute) and expr.value.attr.value == "layers" \
                    and self._is_keras_object(expr.value.value, stmt, depth):
                return "layer"
            if isinstance(expr.value, cst.Attribute) and expr.value.attr.value in SYMBOLIC_ATTRS \
                    and self._is_keras_object(expr.value.value, stmt, depth):
                return "symbolic"
            return "other"
        if isinstance(expr, cst.Call):
            return self._call_kind(expr, stmt, depth)
        return "other"

    def _is_keras_object(self, expr: cst.BaseExpression, stmt: StmtInfo | None, depth: int) -> bool:
        k = self.kind(expr, stmt, depth + 1)
        if k in ("model", "layer"):
            return True
        # model.get_layer("x"), model.layers[-1]: a layer of something we could not classify, by its spelling
        attrs = chain_attrs(expr)
        return bool(attrs) and attrs[-1] in ("get_layer", "layers") and self.uses_tf

    def _call_kind(self, call: cst.Call, stmt: StmtInfo | None, depth: int) -> str:
        q = self.index.qualify(call.func) or ""
        last = _last(q) if q else ""
        if q in _VARIABLE_NAMES:
            return "variable"
        if q and is_keras_name(q) and last == "Input":
            return "input"
        name = dotted_name(call.func)
        if name in ("float", "int"):
            return "scalar"
        if q and is_keras_name(q) and (last in ("Model", "Sequential") or last == "load_model"
                                       or ".applications." in q):
            return "model"
        if q and _is_keras_layers(q):
            return "layer"
        if isinstance(call.func, cst.Name) and call.func.value in self.index.classes:
            cls = self.index.classes[call.func.value]
            if self.class_is(cls, ("Model", "Sequential")):
                return "model"
            if self.class_is(cls, ("Layer",)):
                return "layer"
            return "other"
        if not q and stmt is not None and depth < 6:
            # a same-module function that builds and returns a model or layer (`generator = make_generator()`)
            callee = self.function_named(call.func, stmt)
            if callee is not None and not isinstance(callee.node, cst.Lambda):
                kinds = {self.kind(ret, rstmt, depth + 2) for ret, rstmt in callee.returns}
                for k in ("model", "layer"):
                    if k in kinds:
                        return k
        args = [a.value for a in call.args]
        symbolic_arg = any(self.kind(a, stmt, depth + 1) in ("symbolic", "input") for a in args) \
            or any(self.kind(el.value, stmt, depth + 1) in ("symbolic", "input")
                   for a in args if isinstance(a, (cst.List, cst.Tuple)) for el in a.elements)
        if not symbolic_arg:
            return "other"
        # a layer or model applied to a symbolic tensor, or a framework op on one, is symbolic
        if isinstance(call.func, cst.Call) and self.kind(call.func, stmt, depth + 1) in ("layer", "model"):
            return "symbolic"
        if isinstance(call.func, (cst.Name, cst.Subscript)) and not q \
                and self.kind(call.func, stmt, depth + 1) in ("layer", "model"):
            return "symbolic"
        if isinstance(call.func, cst.Attribute) and not q:
            attrs = chain_attrs(call.func)
            if attrs and attrs[-1] in ("predict", "predict_on_batch", "evaluate", "fit", "numpy"):
                return "other"
            if self.kind(call.func, stmt, depth + 1) in ("layer", "model") or "get_layer" in attrs:
                return "symbolic"
            return "symbolic"  # a method of a symbolic tensor (x.reshape(...)) or of a layer
        if q and (is_keras_name(q) or q.startswith("tensorflow.")) and last not in ("function", "Model"):
            return "symbolic"
        return "other"

    def class_is(self, cls: ClassInfo, lasts: tuple[str, ...], depth: int = 0) -> bool:
        """Whether a same-module class derives (directly or through same-module bases) from a Keras class whose
        name is one of `lasts`."""
        if depth > 4:
            return False
        for b in cls.bases:
            if is_keras_name(b) and (_last(b) in lasts or ("Layer" in lasts and ".layers." in b)):
                return True
            local = self.index.classes.get(b)
            if local is not None and local is not cls and self.class_is(local, lasts, depth + 1):
                return True
        return False

    # ---- which functions are traced ----------------------------------------------------------------------------
    def traced(self, func: FuncInfo) -> str | None:
        """Why a function runs as a trace that captures Python values once: 'compile' (a Keras loss passed to
        compile), 'keras-loss' (a Keras Loss subclass's call), 'tf.function', 'jax.jit', or None."""
        if self._traced is None:
            self._traced = self._find_traced()
        return self._traced.get(id(func.node))

    def _find_traced(self) -> dict[int, str]:
        index = self.index
        out: dict[int, str] = {}
        eager = any(isinstance(c.func, cst.Attribute) and c.func.attr.value == "compile"
                    and any(a.keyword is not None and a.keyword.value == "run_eagerly"
                            and isinstance(a.value, cst.Name) and a.value.value == "True" for a in c.args)
                    for c, _ in index.all_calls)
        for func in index.functions:
            for dec in func.decorators:
                if _is_tf_function(dec):
                    out[id(func.node)] = "tf.function"
                elif _is_jax_jit(dec):
                    out[id(func.node)] = "jax.jit"
            node = func.node
            if isinstance(node, cst.FunctionDef):
                for d in node.decorators:
                    dec = d.decorator
                    if isinstance(dec, cst.Call) and (index.qualify(dec.func) or "").endswith("partial") and dec.args:
                        q = index.qualify(dec.args[0].value) or ""
                        if _is_jax_jit(q):
                            out[id(func.node)] = "jax.jit"
                        elif _is_tf_function(q):
                            out[id(func.node)] = "tf.function"
            scope = self.scopes.scope_of_func(func)
            if scope is not None and scope.kind == "compile" and not eager and id(func.node) not in out:
                out[id(func.node)] = "compile"
            if func.cls is not None and func.parent is None and func.name == "call" \
                    and self.class_is(func.cls, ("Loss", "LossFunctionWrapper")) and not eager:
                out.setdefault(id(func.node), "keras-loss")
        for call, stmt in index.all_calls:
            q = index.qualify(call.func) or ""
            reason = "tf.function" if _is_tf_function(q) else "jax.jit" if _is_jax_jit(q) else None
            if reason is None or not call.args:
                continue
            target = self.function_named(call.args[0].value, stmt)
            if target is not None:
                out.setdefault(id(target.node), reason)
        # same-module helpers called from a traced function are traced with it
        by_id = {id(f.node): f for f in index.functions}
        frontier = [by_id[k] for k in out if k in by_id]
        for _ in range(4):
            new = []
            for f in frontier:
                for call, stmt in f.calls:
                    callee = self.function_named(call.func, stmt)
                    if callee is not None and id(callee.node) not in out:
                        out[id(callee.node)] = out[id(f.node)]
                        new.append(callee)
            frontier = new
        return out

    def is_training_step(self, func: FuncInfo) -> bool:
        """A function that differentiates or applies an update itself (a train step, a custom loop), not a loss:
        it calls `tape.gradient`, `apply_gradients`, `minimize`, `.backward()` or `optimizer.step()`."""
        for call, _ in func.calls:
            if isinstance(call.func, cst.Attribute) and call.func.attr.value in _STEP_CALLS:
                return True
        return False

    def function_named(self, expr: cst.BaseExpression, stmt: StmtInfo | None) -> FuncInfo | None:
        if stmt is None:
            return None
        return function_named(self.index, expr, stmt)

    # ---- module scan: global declarations, attribute stores, loops ---------------------------------------------
    def _scan_module(self) -> None:
        if self._module_scan_done:
            return
        self._module_scan_done = True
        index = self.index
        stack: list[StmtInfo] = []

        def enter(node: cst.CSTNode) -> None:
            info = index.stmt_info.get(id(node))
            if info is not None:
                stack.append(info)
            stmt = stack[-1] if stack else None
            if isinstance(node, (cst.Global, cst.Nonlocal)) and stmt is not None and stmt.func is not None:
                table = self.global_decls if isinstance(node, cst.Global) else self.nonlocal_decls
                for n in node.names:
                    table.setdefault(n.name.value, []).append(stmt.func)
            elif isinstance(node, (cst.For, cst.While)):
                self.loop_bodies[id(node.body)] = node
            elif isinstance(node, cst.Assign) and stmt is not None:
                for t in node.targets:
                    if isinstance(t.target, cst.Attribute):
                        self.attr_stores.append((t.target, node.value, stmt))
            elif isinstance(node, cst.AugAssign) and stmt is not None and isinstance(node.target, cst.Attribute):
                self.attr_stores.append((node.target, node.value, stmt))

        def leave(node: cst.CSTNode) -> None:
            if stack and stack[-1].node is node:
                stack.pop()

        walk(index.module, enter, leave)

    def _where(self, func: FuncInfo) -> str:
        text = f"in `{func.qualname}`"
        cls = func.cls
        if cls is not None and any(_last(b).endswith("Callback") for b in cls.bases):
            text += " (a Callback)"
        return text

    def _training_loop(self, stmt: StmtInfo) -> bool:
        """Whether a statement sits in a for/while loop that also trains (fit, train_on_batch, a traced step)."""
        bodies = [b for b in stmt.path if b in self.loop_bodies]
        if not bodies:
            return False
        for call, cstmt in self.index.all_calls:
            if not any(b in cstmt.path for b in bodies):
                continue
            if isinstance(call.func, cst.Attribute) and call.func.attr.value in TRAIN_CALLS:
                return True
            for target in [call.func] + [a.value for a in call.args]:
                callee = self.function_named(target, cstmt)  # step(x, y), jax.grad(loss_fn)
                if callee is not None and self.traced(callee):
                    return True
        return False

    def rebindings(self, capture: Capture) -> list[Rebinding]:
        """Assignments to a captured variable made after the traced function captured its value: in a function
        declaring it `global`/`nonlocal` (a callback, a schedule), or in a module-level training loop."""
        self._scan_module()
        out: list[Rebinding] = []
        name = capture.name
        decls = self.global_decls if capture.owner is None else self.nonlocal_decls
        for func in decls.get(name, []):
            if capture.owner is not None and not _inside(func, capture.owner):
                continue
            for d in func.defs.get(name, []):
                if d.kind in ("assign", "aug") and d.stmt is not None and self.kind(d.value, d.stmt) != "variable":
                    out.append(Rebinding(d.stmt, self._where(func)))
        if capture.owner is None:
            module_defs = [d for d in capture.defs if d.stmt is not None]
            if module_defs:
                first = min(d.index for d in module_defs)
                for d in module_defs:
                    if d.index > first and d.kind in ("assign", "aug") and self._training_loop(d.stmt):  # type: ignore[arg-type]
                        out.append(Rebinding(d.stmt, "in the training loop"))  # type: ignore[arg-type]
        return out

    def attribute_rebindings(self, cls: ClassInfo, attr: str) -> list[Rebinding]:
        """Assignments to `<instance>.attr` for instances of `cls` outside its `__init__`: in another method
        (`self.attr = ...`), on a module or local variable holding `cls(...)`, or on `<...>.loss.attr`."""
        self._scan_module()
        out: list[Rebinding] = []
        for d in cls.self_attrs.get(attr, []):
            f = d.stmt.func if d.stmt is not None else None
            if f is None or f.name in ("__init__", "build", "call", "get_config", "from_config", "__call__"):
                continue
            if d.kind == "assign" and self.kind(d.value, d.stmt) != "variable":
                out.append(Rebinding(d.stmt, self._where(f)))  # type: ignore[arg-type]
        for target, value, stmt in self.attr_stores:
            if target.attr.value != attr or (isinstance(target.value, cst.Name) and target.value.value == "self"):
                continue
            if value is not None and self.kind(value, stmt) == "variable":
                continue
            base = target.value
            if isinstance(base, cst.Name):
                defs = self.defs_at(base.value, stmt)
                if not any(isinstance(d.value, cst.Call) and isinstance(d.value.func, cst.Name)
                           and d.value.func.value == cls.name for d in defs):
                    continue
            elif not (isinstance(base, cst.Attribute) and base.attr.value in ("loss", "loss_fn", "compiled_loss")):
                continue
            where = self._where(stmt.func) if stmt.func is not None else "at module level"
            out.append(Rebinding(stmt, where))
        return out

    def scalar_attr(self, cls: ClassInfo, attr: str) -> bool:
        """Whether `self.attr` holds a Python number after `__init__` (a literal, or a parameter whose default is
        one), and is never a Variable."""
        defs = cls.self_attrs.get(attr, [])
        init = cls.methods.get("__init__")
        found = False
        for d in defs:
            f = d.stmt.func if d.stmt is not None else None
            if f is not init:
                continue
            k = self.kind(d.value, d.stmt)
            if k == "variable":
                return False
            if k == "scalar":
                found = True
            elif isinstance(d.value, cst.Name) and init is not None:
                for p in init.params:
                    if p.name == d.value.value and p.default is not None \
                            and self.kind(p.default, None) == "scalar":
                        found = True
        return found

    # ---- creation of trainable state ---------------------------------------------------------------------------
    def creation(self, call: cst.Call, depth: int = 0) -> tuple[str, str] | None:
        """If a call creates trainable state, (framework, description): ('tf', 'tf.Variable'),
        ('keras', 'a Dense layer'), ('torch', 'an nn.Linear module'), ('torch', 'an nn.Parameter')."""
        q = self.index.qualify(call.func) or ""
        last = _last(q) if q else ""
        if q in _VARIABLE_NAMES:
            return ("tf", f"`{dotted_name(call.func) or last}(...)`")
        if q and is_keras_name(q):
            if _is_keras_layers(q) and last in WEIGHTED_KERAS_LAYERS:
                return ("keras", f"a `{last}` layer")
            if ".applications." in q and last[:1].isupper():  # a pretrained network (Model/Sequential only wrap)
                return ("keras", f"a Keras `{last}` network")
        if q in _TORCH_PARAMETER:
            return ("torch", "an `nn.Parameter`")
        if q.startswith("torch.nn.") and last in WEIGHTED_TORCH_MODULES:
            return ("torch", f"an `nn.{last}` module")
        if isinstance(call.func, cst.Name) and call.func.value in self.index.classes and depth < 2:
            cls = self.index.classes[call.func.value]
            init = cls.methods.get("__init__")
            if init is not None:
                for c, _ in init.calls:
                    inner = self.creation(c, depth + 1)
                    if inner is not None:
                        fw = "torch" if inner[0] == "torch" else "keras"
                        return (fw, f"a `{cls.name}` (which creates {inner[1]})")
        return None


def _inside(func: FuncInfo, owner: FuncInfo) -> bool:
    p = func.parent
    while p is not None:
        if p is owner:
            return True
        p = p.parent
    return False


def _is_tf_function(qualified: str) -> bool:
    return qualified in ("tensorflow.function", "tensorflow.compat.v1.function", "tensorflow.compat.v2.function")


def _is_jax_jit(qualified: str) -> bool:
    return qualified in ("jax.jit", "jax.pmap", "equinox.filter_jit")


__all__ = ["Capture", "Captures", "Rebinding", "Reads", "captures_for", "chain_attrs", "chain_root", "is_keras_name",
           "WEIGHTED_KERAS_LAYERS", "WEIGHTED_TORCH_MODULES", "SYMBOLIC_ATTRS"]

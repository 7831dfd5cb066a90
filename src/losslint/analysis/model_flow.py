"""Models and the data that flows through them, in one module (a script, a notebook, a training function).

What it knows, from the file's own source and imports only:
- models: `Sequential([...])` plus later `.add(...)`, the functional API (`Model(inputs, outputs)`), `nn.Sequential`,
  same-module `keras.Model` / `nn.Module` subclasses (their `call` / `forward` returns) and same-module builder
  functions (`model = build_model()`);
- each model's final activation ("softmax" | "sigmoid" | "linear" | "other") and the width of its last axis when a
  literal says so (`Dense(n)`, `nn.Linear(k, n)`);
- every `compile(loss=...)`: which built-in probability loss it is (strings like "categorical_crossentropy" mean
  `from_logits=False`, classes with `from_logits=`, the functions);
- the events on each model name, in statement order: compile, fit, evaluate, predict, add ...;
- preprocessing assignments: which variable is a normalised / scaled version of which (`(X - mean) / std`,
  `scaler.transform(X)`, `X / 255.`).

Sequences are read in straight-line order within one region (the module body or one function body): an event in a
branch only counts for the code that branch encloses, so nothing is inferred across `if` arms.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field

import libcst as cst

from losslint.analysis.calls import kwarg, positional
from losslint.analysis.index import ClassInfo, Def, FuncInfo, ModuleIndex, StmtInfo
from losslint.analysis.names import dotted_name, names_in
from losslint.analysis.walk import walk

_KERAS_ROOTS = ("keras.", "tensorflow.keras.", "tensorflow.python.keras.", "tf_keras.", "tensorflow.compat.v1.keras.",
                "tensorflow.compat.v2.keras.")
_TORCH_NN = ("torch.nn.",)
_PASSTHROUGH = frozenset({"Dropout", "AlphaDropout", "GaussianDropout", "GaussianNoise", "ActivityRegularization",
                          "Identity", "SpatialDropout1D"})
_PROB_LOSSES = {
    "categorical_crossentropy": "softmax", "sparse_categorical_crossentropy": "softmax",
    "binary_crossentropy": "sigmoid", "binary_focal_crossentropy": "sigmoid",
    "categorical_focal_crossentropy": "softmax",
}
_LOSS_CLASSES = {
    "CategoricalCrossentropy": "categorical_crossentropy",
    "SparseCategoricalCrossentropy": "sparse_categorical_crossentropy",
    "BinaryCrossentropy": "binary_crossentropy", "BinaryFocalCrossentropy": "binary_focal_crossentropy",
    "CategoricalFocalCrossentropy": "categorical_focal_crossentropy",
}
MODEL_METHODS = frozenset({"compile", "fit", "fit_generator", "train_on_batch", "evaluate", "evaluate_generator",
                           "test_on_batch", "predict", "predict_on_batch", "predict_generator", "add"})
TRAINING = frozenset({"fit", "fit_generator", "train_on_batch"})
EVALUATION = frozenset({"evaluate", "evaluate_generator"})
INFERENCE = frozenset({"evaluate", "evaluate_generator", "predict", "predict_on_batch", "test_on_batch"})
_READ_ONLY = frozenset({"evaluate", "predict", "summary", "save", "save_weights", "to_json", "get_config",
                        "count_params", "evaluate_generator", "predict_generator", "predict_on_batch"})


@dataclass(frozen=True)
class Output:
    """What a model or layer produces: its activation and the literal width of its last axis, where known."""

    activation: str  # "softmax" | "sigmoid" | "linear" | "log_softmax" | "other"
    units: int | None
    node: cst.CSTNode  # the call that decides the activation (a layer, an activation op)


@dataclass(frozen=True)
class LossInfo:
    name: str  # canonical, e.g. "categorical_crossentropy"
    family: str  # "softmax" | "sigmoid"
    from_logits: bool
    explicit: bool  # from_logits was written (else the default False)
    node: cst.BaseExpression  # the loss expression in compile()


@dataclass(eq=False)
class Event:
    kind: str  # the method name
    model: str
    call: cst.Call
    stmt: StmtInfo


@dataclass(eq=False)
class Region:
    func: FuncInfo | None
    defs: dict[str, list[Def]]
    events: list[Event] = field(default_factory=list)
    stmts: list[StmtInfo] = field(default_factory=list)


def _prefix(a: tuple[int, ...], b: tuple[int, ...]) -> bool:
    """Code in block path `a` always runs before code at path `b` that follows it (a encloses b)."""
    return b[: len(a)] == a


def _int(expr: cst.BaseExpression | None) -> int | None:
    if isinstance(expr, cst.Integer):
        try:
            return int(expr.value, 0)
        except ValueError:
            return None
    return None


def _minus_one(expr: cst.BaseExpression | None) -> bool:
    return isinstance(expr, cst.UnaryOperation) and isinstance(expr.operator, cst.Minus) and _int(expr.expression) == 1


def _last(q: str | None) -> str:
    return q.rsplit(".", 1)[-1] if q else ""


class ModelFlow:
    """Built once per module (see `model_flow(index)`)."""

    def __init__(self, index: ModuleIndex) -> None:
        self.index = index
        self.regions: dict[int, Region] = {}
        self.region_of: dict[int, Region] = {}
        self._build()

    # ---- regions and events -----------------------------------------------------------------------------------
    def _region(self, func: FuncInfo | None) -> Region:
        key = id(func) if func is not None else 0
        r = self.regions.get(key)
        if r is None:
            r = Region(func, func.defs if func is not None else self.index.module_defs)
            self.regions[key] = r
        return r

    def _build(self) -> None:
        seen: set[int] = set()
        for info in sorted(self.index.stmt_info.values(), key=lambda s: s.index):
            if id(info) in seen:
                continue
            seen.add(id(info))
            self._region(info.func).stmts.append(info)
        for call, stmt in self.index.all_calls:
            f = call.func
            if isinstance(f, cst.Attribute) and isinstance(f.value, cst.Name) and f.attr.value in MODEL_METHODS:
                region = self._region(stmt.func)
                region.events.append(Event(f.attr.value, f.value.value, call, stmt))
                self.region_of[id(call)] = region
        for r in self.regions.values():
            r.events.sort(key=lambda e: e.stmt.index)

    def reaching(self, region: Region, name: str, stmt: StmtInfo) -> Def | None:
        """The one definition of `name` in `region` that reaches `stmt` in straight-line code, else None."""
        before = [d for d in region.defs.get(name, ()) if d.stmt is not None and d.index < stmt.index]
        if not before:
            return None
        last = max(before, key=lambda d: d.index)
        if last.stmt is stmt or not _prefix(last.path, stmt.path):
            return None
        return last

    def defined_between(self, region: Region, name: str, lo: int, hi: int) -> bool:
        return any(d.stmt is not None and lo < d.index < hi for d in region.defs.get(name, ()))

    def stmts_between(self, region: Region, lo: int, hi: int) -> list[StmtInfo]:
        return [s for s in region.stmts if lo < s.index < hi]

    # ---- layers and outputs -----------------------------------------------------------------------------------
    def _qual(self, expr: cst.BaseExpression) -> str | None:
        return self.index.qualify(expr)

    def is_keras(self, q: str | None) -> bool:
        return bool(q) and q.startswith(_KERAS_ROOTS)  # type: ignore[union-attr]

    def _activation_name(self, expr: cst.BaseExpression | None) -> str:
        if expr is None:
            return "linear"
        if isinstance(expr, cst.Name) and expr.value == "None":
            return "linear"
        if isinstance(expr, cst.SimpleString):
            s = expr.evaluated_value
            s = s.lower() if isinstance(s, str) else ""
            return s if s in ("softmax", "sigmoid", "linear", "log_softmax") else "other"
        q = self._qual(expr)
        last = _last(q)
        if q and last in ("softmax", "sigmoid", "log_softmax"):
            return last
        return "other"

    def layer(self, call: cst.Call, region: Region | None, stmt: StmtInfo | None, seq: bool = False
              ) -> tuple[str, int | None] | None:
        """A layer constructor: ("dense", units) with activation folded in as ("dense:<act>", units), an activation
        layer ("act:<act>", None), a pass-through ("pass", None); None when it is not a layer this knows."""
        q = self._qual(call.func)
        if q is None:
            return None
        last = _last(q)
        pos = positional(call)
        if self.is_keras(q):
            if last == "Dense":
                units = _int(kwarg(call, "units") or (pos[0] if pos else None))
                act = kwarg(call, "activation")
                if act is None and len(pos) > 1:
                    act = pos[1]
                return f"dense:{self._activation_name(act)}", units
            if last == "Activation":
                act = kwarg(call, "activation") or (pos[0] if pos else None)
                return f"act:{self._activation_name(act)}", None
            if last == "Softmax":
                axis = kwarg(call, "axis")
                if axis is None or _minus_one(axis):
                    return "act:softmax", None
                return "act:other", None
            if last in _PASSTHROUGH:
                return "pass", None
            return "other", None
        if q.startswith(_TORCH_NN):
            if last in ("Linear", "LazyLinear"):
                out = kwarg(call, "out_features") or (pos[1] if last == "Linear" and len(pos) > 1 else
                                                      pos[0] if last == "LazyLinear" and pos else None)
                return "dense:linear", _int(out)
            if last in ("Softmax", "LogSoftmax", "Sigmoid"):
                act = {"Softmax": "softmax", "LogSoftmax": "log_softmax", "Sigmoid": "sigmoid"}[last]
                if act != "sigmoid":
                    # Only dim=-1 is provably the last axis; dim=1 (or the implicit dim) is the last axis of the
                    # (batch, features) tensors an `nn.Sequential` classifier head sees, but in a `forward` it is
                    # often the sequence axis of an attention pooling.
                    dim = kwarg(call, "dim") or (pos[0] if pos else None)
                    if not (_minus_one(dim) or (seq and (dim is None or _int(dim) == 1))):
                        return "act:other", None
                return f"act:{act}", None
            if last in ("Dropout", "Identity", "AlphaDropout"):
                return "pass", None
            return "other", None
        return None

    @staticmethod
    def fold(prev: Output | None, lay: tuple[str, int | None], node: cst.CSTNode) -> Output | None:
        kind, units = lay
        if kind.startswith("dense:"):
            return Output(kind[6:], units, node)
        if kind.startswith("act:"):
            return Output(kind[4:], prev.units if prev is not None else None, node)
        if kind == "pass":
            return prev
        return Output("other", None, node)

    def output_of(self, expr: cst.BaseExpression, region: Region, stmt: StmtInfo, cls: ClassInfo | None = None,
                  depth: int = 0) -> Output | None:
        """What a tensor expression is, following the layer calls that produced it."""
        if depth > 12:
            return None
        if isinstance(expr, cst.Name):
            d = self.reaching(region, expr.value, stmt)
            if d is None or d.kind != "assign" or d.value is None or d.stmt is None:
                return None
            return self.output_of(d.value, region, d.stmt, cls, depth + 1)
        if not isinstance(expr, cst.Call):
            return None
        pos = positional(expr)
        inp = pos[0] if pos else None
        lay = self._layer_callee(expr.func, region, stmt, cls)
        if lay is not None:
            prev = self.output_of(inp, region, stmt, cls, depth + 1) if inp is not None else None
            return self.fold(prev, lay[0], lay[1] if lay[0][0].startswith("dense:") else expr)
        op = self.index.op_of(expr)
        if op is not None and op.name in ("softmax", "sigmoid", "log_softmax") and inp is not None:
            if op.name != "sigmoid":
                axis = kwarg(expr, "axis", "dim")
                if axis is None and len(pos) > 1:
                    axis = pos[1]
                # the default axis is the last one except in torch (an implicit, deprecated dim)
                last_axis = _minus_one(axis) or (axis is None and op.framework != "torch")
                if not last_axis:
                    return Output("other", None, expr)
            prev = self.output_of(inp, region, stmt, cls, depth + 1)
            return Output(op.name, prev.units if prev is not None else None, expr)
        return None

    def _layer_callee(self, func: cst.BaseExpression, region: Region, stmt: StmtInfo, cls: ClassInfo | None
                      ) -> tuple[tuple[str, int | None], cst.CSTNode] | None:
        """`Dense(10)(x)`, `dense(x)` with `dense = Dense(10)`, `self.fc(x)` with `self.fc = nn.Linear(..)`."""
        ctor: cst.Call | None = None
        if isinstance(func, cst.Call):
            ctor = func
        elif isinstance(func, cst.Name):
            d = self.reaching(region, func.value, stmt)
            if d is not None and d.kind == "assign" and isinstance(d.value, cst.Call):
                ctor = d.value
        elif isinstance(func, cst.Attribute) and isinstance(func.value, cst.Name) and func.value.value == "self" \
                and cls is not None:
            defs = cls.self_attrs.get(func.attr.value, [])
            if len(defs) == 1 and isinstance(defs[0].value, cst.Call):
                ctor = defs[0].value
        if ctor is None:
            return None
        lay = self.layer(ctor, region, stmt)
        if lay is None:
            return None
        return lay, ctor

    def sequence_output(self, layers: list[cst.BaseExpression]) -> Output | None:
        out: Output | None = None
        for el in layers:
            if not isinstance(el, cst.Call):
                return None
            lay = self.layer(el, None, None, seq=True)
            if lay is None:
                return None
            out = self.fold(out, lay, el)
        return out

    # ---- models -------------------------------------------------------------------------------------------------
    def model_output(self, region: Region, name: str, at: StmtInfo, depth: int = 0) -> Output | None:
        """The final output of the model bound to `name` when `at` runs, or None when it is not provable."""
        d = self.reaching(region, name, at)
        if d is None or d.kind != "assign" or not isinstance(d.value, cst.Call) or d.stmt is None or depth > 3:
            return None
        call = d.value
        q = self._qual(call.func)
        last = _last(q)
        out: Output | None = None
        if q is not None and last == "Sequential" and (self.is_keras(q) or q.startswith(_TORCH_NN)):
            pos = positional(call)
            if q.startswith(_TORCH_NN):
                out = self.sequence_output(pos)
            else:
                layers = kwarg(call, "layers") or (pos[0] if pos else None)
                if layers is None:
                    out = None
                elif isinstance(layers, (cst.List, cst.Tuple)):
                    if any(isinstance(e, cst.StarredElement) for e in layers.elements):
                        return None
                    out = self.sequence_output([e.value for e in layers.elements])
                else:
                    return None
            # later `.add(...)` on the same name before `at`
            for ev in region.events:
                if ev.model != name or ev.kind != "add" or not (d.index < ev.stmt.index < at.index):
                    continue
                if not _prefix(ev.stmt.path, at.path) or self.defined_between(region, name, d.index, ev.stmt.index):
                    return None
                pos = positional(ev.call)
                if len(pos) != 1 or not isinstance(pos[0], cst.Call):
                    return None
                lay = self.layer(pos[0], None, None)
                if lay is None:
                    return None
                out = self.fold(out, lay, pos[0])
            return out
        if any(ev.model == name and ev.kind == "add" and d.index < ev.stmt.index < at.index for ev in region.events):
            return None
        if q is not None and self.is_keras(q) and last in ("Model", "Functional"):
            outputs = kwarg(call, "outputs")
            if outputs is None:
                pos = positional(call)
                outputs = pos[1] if len(pos) > 1 else None
            if outputs is None:
                return None
            return self.output_of(outputs, region, d.stmt)
        if isinstance(call.func, cst.Name):
            cls = self.index.classes.get(call.func.value)
            if cls is not None:
                return self.class_output(cls)
            fn = self.index.module_functions.get(call.func.value)
            if fn is not None and d.stmt.func is not fn:
                return self.function_model_output(fn, depth + 1)
        return None

    def class_output(self, cls: ClassInfo) -> Output | None:
        if not any(self.is_keras(b) or b.startswith("torch.nn.") for b in cls.bases):
            return None
        method = cls.methods.get("call") or cls.methods.get("forward")
        if method is None or not method.returns:
            return None
        region = self._region(method)
        outs = [self.output_of(expr, region, stmt, cls) for expr, stmt in method.returns]
        if not outs or any(o is None for o in outs):
            return None
        if len({(o.activation, o.units) for o in outs if o is not None}) != 1:
            return None
        return outs[0]

    def function_model_output(self, fn: FuncInfo, depth: int) -> Output | None:
        if len(fn.returns) != 1:
            return None
        expr, stmt = fn.returns[0]
        if not isinstance(expr, cst.Name):
            return None
        return self.model_output(self._region(fn), expr.value, stmt, depth)

    # ---- softmax over one unit ----------------------------------------------------------------------------------
    def single_unit_softmaxes(self) -> dict[int, str]:
        """Nodes that apply a softmax over a last axis of literal size 1, with a description of the producer."""
        found: dict[int, str] = {}
        for call, stmt in self.index.all_calls:
            region = self._region(stmt.func)
            lay = self.layer(call, region, stmt)
            if lay is not None and lay == ("dense:softmax", 1):
                found[id(call)] = "`Dense(1, activation=\"softmax\")`"
                continue
            q = self._qual(call.func) or ""
            if q and _last(q) == "Sequential" and (self.is_keras(q) or q.startswith(_TORCH_NN)):
                pos = positional(call)
                items = pos if q.startswith(_TORCH_NN) else (
                    [e.value for e in pos[0].elements] if pos and isinstance(pos[0], (cst.List, cst.Tuple)) else [])
                out: Output | None = None
                for el in items:
                    el_lay = self.layer(el, None, None, seq=True) if isinstance(el, cst.Call) else None
                    if el_lay is None:
                        break
                    if el_lay[0] == "act:softmax" and out is not None and out.units == 1:
                        found[id(el)] = f"a layer of 1 unit (`{_code(out.node)}`)"
                    out = self.fold(out, el_lay, el)
                continue
            f = call.func
            if isinstance(f, cst.Attribute) and f.attr.value == "add" and isinstance(f.value, cst.Name):
                pos = positional(call)
                if len(pos) == 1 and isinstance(pos[0], cst.Call) and self.layer(pos[0], None, None) == (
                        "act:softmax", None):
                    prev = self.model_output(region, f.value.value, stmt)
                    if prev is not None and prev.units == 1:
                        found[id(pos[0])] = f"a layer of 1 unit (`{_code(prev.node)}`)"
                continue
            op = self.index.op_of(call)
            applied = isinstance(f, cst.Call) or isinstance(f, (cst.Name, cst.Attribute)) and op is None
            if (op is not None and op.name == "softmax") or applied:
                cls = _class_of(stmt.func)
                out = self.output_of(call, region, stmt, cls)
                if out is not None and out.activation == "softmax" and out.node is call and out.units == 1:
                    pos = positional(call)
                    prev = self.output_of(pos[0], region, stmt, cls) if pos else None
                    what = f"`{_code(prev.node)}`" if prev is not None else "a 1-unit layer"
                    found[id(call)] = f"the output of {what}, whose last axis has size 1"
        return found

    # ---- compile ------------------------------------------------------------------------------------------------
    def compile_loss(self, event: Event, region: Region) -> LossInfo | None:
        call = event.call
        expr = kwarg(call, "loss")
        if expr is None:
            pos = positional(call)
            expr = pos[1] if len(pos) > 1 else None
        if expr is None:
            return None
        return self.loss_info(expr, region, event.stmt, expr)

    def loss_info(self, expr: cst.BaseExpression, region: Region, stmt: StmtInfo, shown: cst.BaseExpression,
                  depth: int = 0) -> LossInfo | None:
        if isinstance(expr, cst.SimpleString):
            s = expr.evaluated_value
            if isinstance(s, str) and s in _PROB_LOSSES:
                return LossInfo(s, _PROB_LOSSES[s], False, False, shown)
            return None
        if isinstance(expr, cst.Name) and self.index.qualify(expr) is None:
            d = self.reaching(region, expr.value, stmt)
            if d is None or d.kind != "assign" or d.value is None or d.stmt is None or depth > 3:
                return None
            return self.loss_info(d.value, region, d.stmt, shown, depth + 1)
        q = self._qual(expr.func if isinstance(expr, cst.Call) else expr)
        if not self.is_keras(q):
            return None
        last = _last(q)
        if isinstance(expr, cst.Call) and last in _LOSS_CLASSES:
            name = _LOSS_CLASSES[last]
            fl = kwarg(expr, "from_logits")
            if fl is None:
                return LossInfo(name, _PROB_LOSSES[name], False, False, shown)
            if isinstance(fl, cst.Name) and fl.value in ("True", "False"):
                return LossInfo(name, _PROB_LOSSES[name], fl.value == "True", True, shown)
            return None
        if not isinstance(expr, cst.Call) and last in _PROB_LOSSES:
            return LossInfo(last, _PROB_LOSSES[last], False, False, shown)
        return None

    # ---- preprocessing ------------------------------------------------------------------------------------------
    def transform_of(self, expr: cst.BaseExpression) -> tuple[str, cst.BaseExpression] | None:
        """(description, source) when `expr` normalises or rescales `source`: `(X - m) / s`, `X / 255.`,
        `scaler.transform(X)`, `preprocess_input(X)`."""
        if isinstance(expr, cst.BinaryOperation):
            left, right = expr.left, expr.right
            if isinstance(expr.operator, cst.Divide):
                inner = _strip(left)
                if isinstance(inner, cst.BinaryOperation) and isinstance(inner.operator, cst.Subtract):
                    return "normalised", _strip(inner.left)
                if isinstance(right, (cst.Float, cst.Integer)):
                    return f"scaled by 1/{right.value}", inner
                return None
            if isinstance(expr.operator, cst.Subtract) and _mentions_mean(right):
                return "centred", _strip(left)
            return None
        if isinstance(expr, cst.Call):
            f = expr.func
            pos = positional(expr)
            if isinstance(f, cst.Attribute) and f.attr.value in ("transform", "fit_transform") and pos:
                return f"scaled by `{dotted_name(f) or f.attr.value}`", _strip(pos[0])
            q = self._qual(f) or ""
            last = _last(q)
            if pos and (last == "preprocess_input" or (q.startswith("sklearn.preprocessing.") and last in (
                    "scale", "normalize", "minmax_scale", "robust_scale", "maxabs_scale"))
                    or (self.is_keras(q) and last == "normalize")):
                return f"preprocessed by `{dotted_name(f)}`", _strip(pos[0])
        return None


def _code(node: cst.CSTNode, limit: int = 40) -> str:
    text = " ".join(cst.Module(body=[]).code_for_node(node).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _class_of(func: FuncInfo | None) -> ClassInfo | None:
    while func is not None and func.cls is None:
        func = func.parent
    return func.cls if func is not None else None


def _strip(expr: cst.BaseExpression) -> cst.BaseExpression:
    """`X.astype("float32")`, `X.values`, `(X)` -> X."""
    while True:
        if isinstance(expr, cst.Call) and isinstance(expr.func, cst.Attribute) \
                and expr.func.attr.value in ("astype", "to_numpy", "copy"):
            expr = expr.func.value
        elif isinstance(expr, cst.Attribute) and expr.attr.value == "values":
            expr = expr.value
        else:
            return expr


def _mentions_mean(expr: cst.BaseExpression) -> bool:
    if isinstance(expr, cst.Call):
        f = expr.func
        name = f.attr.value if isinstance(f, cst.Attribute) else f.value if isinstance(f, cst.Name) else ""
        return name == "mean"
    return any("mean" in n.lower() for n in names_in(expr))


_CACHE: "weakref.WeakKeyDictionary[ModuleIndex, ModelFlow]" = weakref.WeakKeyDictionary()


def model_flow(index: ModuleIndex) -> ModelFlow:
    flow = _CACHE.get(index)
    if flow is None:
        flow = ModelFlow(index)
        _CACHE[index] = flow
    return flow


def first_input(call: cst.Call) -> cst.BaseExpression | None:
    """The `x` of fit/evaluate/predict."""
    v = kwarg(call, "x")
    if v is not None:
        return v
    pos = positional(call)
    return pos[0] if pos else None


def read_only_use(stmt: StmtInfo, model: str) -> bool:
    """Does the statement mention `model` only through read-only methods (evaluate, predict, summary, save)?"""
    found_other = False

    def enter(n: cst.CSTNode) -> bool:
        nonlocal found_other
        if isinstance(n, cst.Attribute) and isinstance(n.value, cst.Name) and n.value.value == model:
            if n.attr.value not in _READ_ONLY:
                found_other = True
            return False
        if isinstance(n, cst.Name) and n.value == model:
            found_other = True
        return not found_other

    walk(stmt.node, enter)
    return not found_other


__all__ = ["EVALUATION", "Event", "INFERENCE", "LossInfo", "ModelFlow", "Output", "Region", "TRAINING",
           "first_input", "model_flow", "read_only_use"]


def same_args(a: cst.Call, b: cst.Call, keep: tuple[str, ...]) -> bool:
    """Do two calls pass the same positional arguments and the same `keep` keywords (compared as text)?"""
    def key(c: cst.Call) -> tuple:
        code = cst.Module(body=[]).code_for_node
        pos = tuple(" ".join(code(v).split()) for v in positional(c))
        kws = tuple(sorted((k, " ".join(code(v).split())) for k in keep
                           if (v := kwarg(c, k)) is not None))
        return pos, kws
    return key(a) == key(b)


def call_text(node: cst.CSTNode, limit: int = 50) -> str:
    return _code(node, limit)

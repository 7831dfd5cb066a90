"""Loss-function contracts: which built-in loss a call is, which argument is the prediction, and what kind of value
(logits, probabilities, log-probabilities) it expects there; and what kind of value actually reaches it.

Calls are resolved through the file's imports: functional losses (`F.cross_entropy`, `tf.nn.*_with_logits`,
`tf.keras.losses.binary_crossentropy`, `K.categorical_crossentropy`, `optax.softmax_cross_entropy`), loss objects
called directly (`nn.BCELoss()(p, y)`) and loss objects bound to a name or a `self.` attribute first
(`criterion = nn.CrossEntropyLoss()` ... `criterion(out, y)`, `self.loss_fn = BinaryCrossentropy(from_logits=True)`).

`input_kind` says what an expression is when that is provable from the same code: a `softmax`/`sigmoid` output, a
`log_softmax`/`log(softmax)` log-probability, followed through names assigned once, shape-only ops and indexing,
same-module helpers and the `forward` of a same-module `nn.Module` instantiated in the file.
"""

from __future__ import annotations

from dataclasses import dataclass

import libcst as cst

from losslint.analysis.calls import kwarg, positional
from losslint.analysis.facts import Facts, assigned_value
from losslint.analysis.index import ModuleIndex, StmtInfo, function_named, operand


@dataclass(frozen=True)
class LossSpec:
    """One built-in loss: its family, the parameter order, what it expects as prediction, whether it is symmetric."""

    name: str  # e.g. "CrossEntropyLoss", "binary_crossentropy"
    framework: str  # "torch" | "keras" | "tensorflow" | "optax"
    pred_first: bool  # (input, target) as in torch/optax, else (y_true, y_pred)
    expects: str  # "logits" | "probabilities" | "log-probabilities" | "any"
    symmetric: bool = False
    binary: bool = False  # a binary (sigmoid) cross-entropy
    pred_kw: tuple[str, ...] = ()
    true_kw: tuple[str, ...] = ()


_T = ("input",), ("target",)
_TORCH_CLASSES = {
    "CrossEntropyLoss": LossSpec("CrossEntropyLoss", "torch", True, "logits"),
    "NLLLoss": LossSpec("NLLLoss", "torch", True, "log-probabilities"),
    "KLDivLoss": LossSpec("KLDivLoss", "torch", True, "log-probabilities"),
    "BCELoss": LossSpec("BCELoss", "torch", True, "probabilities", binary=True),
    "BCEWithLogitsLoss": LossSpec("BCEWithLogitsLoss", "torch", True, "logits", binary=True),
    "PoissonNLLLoss": LossSpec("PoissonNLLLoss", "torch", True, "any"),
    "MultiLabelSoftMarginLoss": LossSpec("MultiLabelSoftMarginLoss", "torch", True, "logits"),
    "MSELoss": LossSpec("MSELoss", "torch", True, "any", symmetric=True),
    "L1Loss": LossSpec("L1Loss", "torch", True, "any", symmetric=True),
    "SmoothL1Loss": LossSpec("SmoothL1Loss", "torch", True, "any", symmetric=True),
    "HuberLoss": LossSpec("HuberLoss", "torch", True, "any", symmetric=True),
}
_TORCH_FUNCS = {
    "cross_entropy": LossSpec("F.cross_entropy", "torch", True, "logits"),
    "nll_loss": LossSpec("F.nll_loss", "torch", True, "log-probabilities"),
    "kl_div": LossSpec("F.kl_div", "torch", True, "log-probabilities"),
    "binary_cross_entropy": LossSpec("F.binary_cross_entropy", "torch", True, "probabilities", binary=True),
    "binary_cross_entropy_with_logits": LossSpec("F.binary_cross_entropy_with_logits", "torch", True, "logits",
                                                 binary=True),
    "mse_loss": LossSpec("F.mse_loss", "torch", True, "any", symmetric=True),
    "l1_loss": LossSpec("F.l1_loss", "torch", True, "any", symmetric=True),
    "smooth_l1_loss": LossSpec("F.smooth_l1_loss", "torch", True, "any", symmetric=True),
    "huber_loss": LossSpec("F.huber_loss", "torch", True, "any", symmetric=True),
}
# Keras functional losses (y_true, y_pred, from_logits=False) and their classes.
_KERAS_FUNCS = {
    "binary_crossentropy": ("probabilities", True, False),
    "categorical_crossentropy": ("probabilities", False, False),
    "sparse_categorical_crossentropy": ("probabilities", False, False),
    "binary_focal_crossentropy": ("probabilities", True, False),
    "categorical_focal_crossentropy": ("probabilities", False, False),
    "kl_divergence": ("any", False, False), "kld": ("any", False, False), "kullback_leibler_divergence":
        ("any", False, False), "poisson": ("any", False, False), "hinge": ("any", False, False),
    "squared_hinge": ("any", False, False), "categorical_hinge": ("any", False, False),
    "mean_absolute_percentage_error": ("any", False, False), "mape": ("any", False, False),
    "mean_squared_logarithmic_error": ("any", False, False), "msle": ("any", False, False),
    "mean_squared_error": ("any", False, True), "mse": ("any", False, True),
    "mean_absolute_error": ("any", False, True), "mae": ("any", False, True), "huber": ("any", False, True),
    "log_cosh": ("any", False, True), "logcosh": ("any", False, True),
}
_KERAS_CLASSES = {
    "BinaryCrossentropy": "binary_crossentropy", "CategoricalCrossentropy": "categorical_crossentropy",
    "SparseCategoricalCrossentropy": "sparse_categorical_crossentropy",
    "BinaryFocalCrossentropy": "binary_focal_crossentropy", "CategoricalFocalCrossentropy":
        "categorical_focal_crossentropy", "KLDivergence": "kl_divergence", "Poisson": "poisson", "Hinge": "hinge",
    "SquaredHinge": "squared_hinge", "CategoricalHinge": "categorical_hinge",
    "MeanAbsolutePercentageError": "mean_absolute_percentage_error",
    "MeanSquaredLogarithmicError": "mean_squared_logarithmic_error", "MeanSquaredError": "mean_squared_error",
    "MeanAbsoluteError": "mean_absolute_error", "Huber": "huber", "LogCosh": "log_cosh",
}
_KERAS_NS = ("keras.losses", "tensorflow.keras.losses", "tf_keras.losses", "keras.src.losses",
             "tensorflow.compat.v1.keras.losses", "tensorflow.compat.v2.keras.losses")
_KERAS_BACKEND_NS = ("keras.backend", "tensorflow.keras.backend", "tf_keras.backend", "keras.ops",
                     "keras.src.ops", "tensorflow.python.keras.backend")
_TF_ROOTS = ("tensorflow", "tensorflow.compat.v1", "tensorflow.compat.v2")
_TF_LOGITS = {
    "sigmoid_cross_entropy_with_logits": (("logits",), ("labels",), True),
    "weighted_cross_entropy_with_logits": (("logits",), ("labels",), True),
    "softmax_cross_entropy_with_logits": (("logits",), ("labels",), False),
    "softmax_cross_entropy_with_logits_v2": (("logits",), ("labels",), False),
    "sparse_softmax_cross_entropy_with_logits": (("logits",), ("labels",), False),
}
_TF_V1_LOSSES = {  # tf.compat.v1.losses.*(labels, logits)
    "sigmoid_cross_entropy": (("logits",), ("multi_class_labels",), True),
    "softmax_cross_entropy": (("logits",), ("onehot_labels",), False),
    "sparse_softmax_cross_entropy": (("logits",), ("labels",), False),
}
_OPTAX = {
    "sigmoid_binary_cross_entropy": True, "softmax_cross_entropy": False,
    "softmax_cross_entropy_with_integer_labels": False, "sigmoid_focal_loss": True, "poly_loss_cross_entropy": False,
    "safe_softmax_cross_entropy": False,
}


@dataclass(frozen=True)
class LossCall:
    """A call of a built-in loss, with the expressions it passes as prediction and as target."""

    spec: LossSpec
    call: cst.Call
    pred: cst.BaseExpression | None
    target: cst.BaseExpression | None
    from_logits: bool  # a Keras loss with from_logits=True expects logits
    positional_pair: bool  # both passed positionally (argument order matters)
    via: str  # how it was written, for messages


def _keras_spec(fname: str, from_logits: bool) -> LossSpec:
    expects, binary, symmetric = _KERAS_FUNCS[fname]
    if from_logits:
        expects = "logits"
    return LossSpec(fname, "keras", False, expects, symmetric=symmetric, binary=binary, pred_kw=("y_pred", "output"),
                    true_kw=("y_true", "target"))


def _from_logits(call: cst.Call | None) -> bool:
    if call is None:
        return False
    v = kwarg(call, "from_logits")
    return isinstance(v, cst.Name) and v.value == "True"


def spec_of_constructor(index: ModuleIndex, ctor: cst.Call) -> LossSpec | None:
    """The loss a constructor call builds: `nn.CrossEntropyLoss()`, `tf.keras.losses.BinaryCrossentropy(...)`."""
    q = index.qualify(ctor.func) or ""
    ns, _, name = q.rpartition(".")
    if ns in ("torch.nn", "torch.nn.modules.loss") and name in _TORCH_CLASSES:
        return _TORCH_CLASSES[name]
    if ns in _KERAS_NS and name in _KERAS_CLASSES:
        return _keras_spec(_KERAS_CLASSES[name], _from_logits(ctor))
    return None


def _function_spec(index: ModuleIndex, call: cst.Call) -> tuple[LossSpec, str] | None:
    q = index.qualify(call.func) or ""
    ns, _, name = q.rpartition(".")
    if ns == "torch.nn.functional" and name in _TORCH_FUNCS:
        return _TORCH_FUNCS[name], f"F.{name}"
    if (ns in _KERAS_NS or ns in _KERAS_BACKEND_NS) and name in _KERAS_FUNCS:
        spec = _keras_spec(name, _from_logits(call))
        if ns in _KERAS_BACKEND_NS:
            spec = LossSpec(spec.name, spec.framework, False, spec.expects, spec.symmetric, spec.binary,
                            ("output",), ("target",))
        return spec, name
    if ns in tuple(f"{r}.nn" for r in _TF_ROOTS) and name in _TF_LOGITS:
        p, t, binary = _TF_LOGITS[name]
        return LossSpec(name, "tensorflow", False, "logits", binary=binary, pred_kw=p, true_kw=t), f"tf.nn.{name}"
    if ns in tuple(f"{r}.losses" for r in _TF_ROOTS) and name in _TF_V1_LOSSES:
        p, t, binary = _TF_V1_LOSSES[name]
        return LossSpec(name, "tensorflow", False, "logits", binary=binary, pred_kw=p, true_kw=t), f"tf.losses.{name}"
    if ns in ("optax", "optax.losses") and name in _OPTAX:
        return LossSpec(name, "optax", True, "logits", binary=_OPTAX[name], pred_kw=("logits",),
                        true_kw=("labels",)), f"optax.{name}"
    if ns in ("optax", "optax.losses") and name == "kl_divergence":
        return LossSpec(name, "optax", True, "log-probabilities", pred_kw=("log_predictions",),
                        true_kw=("targets",)), "optax.kl_divergence"
    return None


def _constructor_of(index: ModuleIndex, facts: Facts, func: cst.BaseExpression, stmt: StmtInfo,
                    depth: int = 0) -> cst.Call | None:
    """The constructor call a callee expression stands for: `nn.BCELoss()` itself, a name assigned one, or a
    `self.attr` assigned one in any method of the class."""
    if depth > 3:
        return None
    if isinstance(func, cst.Call):
        return func
    if isinstance(func, cst.Name):
        got = assigned_value(facts, func.value, stmt)
        if got is None and stmt.func is not None and func.value not in stmt.func.defs:
            defs = index.module_defs.get(func.value, [])
            if len(defs) == 1 and defs[0].value is not None and defs[0].stmt is not None:
                got = (defs[0].value, defs[0].stmt)
        if got is not None and isinstance(got[0], cst.Call):
            return got[0]
        return None
    if isinstance(func, cst.Attribute) and isinstance(func.value, cst.Name) and func.value.value == "self":
        f = stmt.func
        while f is not None and f.cls is None:
            f = f.parent
        if f is None or f.cls is None:
            return None
        defs = f.cls.self_attrs.get(func.attr.value, [])
        calls = [d.value for d in defs if isinstance(d.value, cst.Call)]
        if len(defs) == 1 and len(calls) == 1:
            return calls[0]
    return None


def loss_call(index: ModuleIndex, facts: Facts, call: cst.Call, stmt: StmtInfo | None) -> LossCall | None:
    """Resolve `call` to a built-in loss applied to a prediction and a target, or None."""
    if stmt is None:
        return None
    got = _function_spec(index, call)
    if got is not None:
        spec, via = got
    else:
        ctor = _constructor_of(index, facts, call.func, stmt)
        if ctor is None or ctor is call:
            return None
        spec = spec_of_constructor(index, ctor)
        if spec is None:
            return None
        via = index.module.code_for_node(call.func).strip()
        if spec.framework == "torch":
            spec = LossSpec(spec.name, spec.framework, True, spec.expects, spec.symmetric, spec.binary,
                            ("input",), ("target",))
        else:
            spec = LossSpec(spec.name, spec.framework, False, spec.expects, spec.symmetric, spec.binary,
                            ("y_pred",), ("y_true",))
    pos = positional(call)
    if any(a.star for a in call.args):
        return None
    if spec.pred_first:
        pred = kwarg(call, *(spec.pred_kw or ("input",))) or (pos[0] if pos else None)
        target = kwarg(call, *(spec.true_kw or ("target",))) or (pos[1] if len(pos) > 1 else None)
    else:
        target = kwarg(call, *(spec.true_kw or ("y_true", "target"))) or (pos[0] if pos else None)
        pred = kwarg(call, *(spec.pred_kw or ("y_pred", "output"))) or (pos[1] if len(pos) > 1 else None)
    return LossCall(spec, call, pred, target, spec.expects == "logits" and spec.framework == "keras",
                    len(pos) >= 2, via)


# ---- what reaches the prediction slot ----------------------------------------------------------------------------

_SHAPE_ONLY = frozenset({"identity", "cast"})
_SHAPE_METHODS = frozenset({"view", "reshape", "squeeze", "unsqueeze", "flatten", "contiguous", "float", "double",
                            "to", "permute", "transpose", "type_as", "view_as", "clone", "cpu", "cuda"})


def input_kind(index: ModuleIndex, facts: Facts, expr: cst.BaseExpression, stmt: StmtInfo,
               depth: int = 0) -> tuple[str, cst.CSTNode] | None:
    """("softmax" | "sigmoid" | "log-probability", the node that made it) when `expr` provably is such a value."""
    if depth > 8:
        return None
    if isinstance(expr, cst.Call):
        op = index.op_of(expr)
        if op is not None:
            if op.name in ("softmax", "sigmoid"):
                return op.name, expr
            if op.name in ("log_softmax", "log_sigmoid"):
                return "log-probability", expr
            if op.name in ("log", "log2", "log10"):
                inner = operand(expr, op)
                got = input_kind(index, facts, inner, stmt, depth + 1) if inner is not None else None
                if got is not None and got[0] in ("softmax", "sigmoid"):
                    return "log-probability", expr
                return None
            if op.name in ("clip", "maximum", "minimum"):
                inner = operand(expr, op)  # clip(softmax(z), eps, 1) is still probabilities
                got = input_kind(index, facts, inner, stmt, depth + 1) if inner is not None else None
                return got if got is not None and got[0] != "log-probability" else None
            if op.name in _SHAPE_ONLY:
                inner = operand(expr, op)
                return input_kind(index, facts, inner, stmt, depth + 1) if inner is not None else None
            return None
        if isinstance(expr.func, cst.Attribute) and expr.func.attr.value in _SHAPE_METHODS \
                and index.qualify(expr.func) is None:
            return input_kind(index, facts, expr.func.value, stmt, depth + 1)
        return _callee_kind(index, facts, expr, stmt, depth)
    if isinstance(expr, cst.Subscript):
        return input_kind(index, facts, expr.value, stmt, depth + 1)
    if isinstance(expr, cst.Name):
        got = assigned_value(facts, expr.value, stmt)
        if got is not None:
            return input_kind(index, facts, got[0], got[1], depth + 1)
    return None


def _callee_kind(index: ModuleIndex, facts: Facts, call: cst.Call, stmt: StmtInfo,
                 depth: int) -> tuple[str, cst.CSTNode] | None:
    """A same-module helper, or `model(x)` with `model = Net()` for a same-module class: all returns agree."""
    f = function_named(index, call.func, stmt)
    if f is None and isinstance(call.func, cst.Name):
        ctor = _constructor_of(index, facts, call.func, stmt)
        if ctor is not None and isinstance(ctor.func, cst.Name):
            cls = index.classes.get(ctor.func.value)
            if cls is not None:
                f = cls.methods.get("forward") or cls.methods.get("call")
    if f is None or not f.returns:
        return None
    kinds = [input_kind(index, facts, ret, rstmt, depth + 1) for ret, rstmt in f.returns]
    if all(k is not None for k in kinds) and len({k[0] for k in kinds}) == 1:  # type: ignore[index]
        return kinds[0]
    return None


__all__ = ["LossCall", "LossSpec", "input_kind", "loss_call", "spec_of_constructor"]

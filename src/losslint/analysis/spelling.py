"""How to write an op in the user's own spelling, for fixes: `tf.math.log` -> `tf.math.maximum`, `K.log` ->
`K.maximum(..., K.epsilon())`, `x.log()` -> `x.clamp(min=eps).log()`. Knows which namespaces have which ops, so a
fix never names a function the framework lacks."""

from __future__ import annotations

import libcst as cst

from losslint.analysis.index import ModuleIndex
from losslint.analysis.names import dotted_name
from losslint.analysis.ops import Op

_ATOMIC = (cst.Name, cst.Attribute, cst.Call, cst.Subscript, cst.Integer, cst.Float)


def code(node: cst.CSTNode) -> str:
    return cst.Module(body=[]).code_for_node(node)


def atom(node: cst.BaseExpression) -> str:
    """Source of `node`, parenthesised unless it is already an atom (for `(a - b).clamp(...)`, `-(x)`)."""
    text = code(node)
    if isinstance(node, _ATOMIC) or (getattr(node, "lpar", None) and node.lpar):  # type: ignore[attr-defined]
        return text
    return f"({text})"


def namespace(call: cst.Call) -> str | None:
    """`tf.math` for `tf.math.log(x)`; None for a bare name or a method call."""
    if isinstance(call.func, cst.Attribute):
        return dotted_name(call.func.value)
    return None


def family(op: Op) -> str:
    """tf | keras-backend | keras-ops | torch | jax | numpy | method."""
    q = op.qualified
    if op.is_method:
        return "method"
    if ".backend." in q or q.startswith(("keras.backend", "tf_keras.backend")):
        return "keras-backend"
    if q.startswith(("keras.ops", "keras.src.ops")):
        return "keras-ops"
    if q.startswith("tensorflow"):
        return "tf"
    if q.startswith("torch"):
        return "torch"
    if q.startswith("jax"):
        return "jax"
    if q.startswith("numpy"):
        return "numpy"
    return "other"


def alias(index: ModuleIndex, module: str) -> str | None:
    """The local name the file binds to `module` (e.g. "tf" for tensorflow), if any."""
    for local, target in index.imports.bindings.items():
        if target == module:
            return local
    return None


def lower_bound(index: ModuleIndex, call: cst.Call, op: Op, arg: cst.BaseExpression, eps: str) -> str | None:
    """`arg` bounded below by eps in the call's own framework spelling, or None if there is no safe spelling."""
    fam = family(op)
    ns = namespace(call)
    if fam == "method":
        return f"{atom(arg)}.clamp(min={eps})"
    if ns is None:
        return None
    if fam == "keras-backend":
        return f"{ns}.maximum({code(arg)}, {ns}.epsilon())"
    if fam == "torch":
        torch = alias(index, "torch")
        return f"{torch}.clamp({code(arg)}, min={eps})" if torch else None
    if fam in ("tf", "keras-ops", "jax", "numpy"):
        return f"{ns}.maximum({code(arg)}, {eps})"
    return None


# namespaces (as qualified prefixes) that have log_softmax / log_sigmoid / softplus / divide_no_nan
_HAS = {
    "log_softmax": ("tensorflow.nn", "tensorflow.math", "tensorflow.compat.v1.nn", "keras.ops", "keras.src.ops",
                    "torch", "torch.nn.functional", "jax.nn"),
}


def fused(index: ModuleIndex, inner_call: cst.Call, inner_op: Op, name: str, args: str) -> str | None:
    """`name(args)` (log_softmax, log_sigmoid, softplus) spelled for the framework of `inner_call`."""
    fam = family(inner_op)
    if fam == "method":
        if name == "log_softmax":
            return f"{atom(inner_call.func.value)}.log_softmax({args})"  # type: ignore[attr-defined]
        return None
    q_ns = inner_op.qualified.rsplit(".", 1)[0]
    ns = namespace(inner_call)
    if name == "log_softmax" and ns is not None and q_ns in _HAS["log_softmax"]:
        return f"{ns}.log_softmax({args})"
    if fam in ("tf", "keras-backend"):
        tf = alias(index, "tensorflow")
        if tf is None:
            return None
        return {"log_softmax": f"{tf}.nn.log_softmax({args})", "log_sigmoid": f"{tf}.math.log_sigmoid({args})",
                "softplus": f"{tf}.math.softplus({args})"}.get(name)
    if fam == "keras-ops" and ns is not None:
        return f"{ns}.{name}({args})"
    if fam == "jax":
        jax = alias(index, "jax")
        jnn = alias(index, "jax.nn")
        prefix = jnn or (f"{jax}.nn" if jax else None)
        return f"{prefix}.{name}({args})" if prefix else None
    if fam == "torch":
        functional = alias(index, "torch.nn.functional")
        torch = alias(index, "torch")
        prefix = functional or (f"{torch}.nn.functional" if torch else None)
        if prefix is None:
            return None
        torch_name = {"log_softmax": "log_softmax", "log_sigmoid": "logsigmoid", "softplus": "softplus"}[name]
        return f"{prefix}.{torch_name}({args})"
    return None


def divide_no_nan_spelling(index: ModuleIndex, expr: cst.BaseExpression) -> str | None:
    """`tf.math.divide_no_nan` / `ops.divide_no_nan` when `expr` is computed with TensorFlow or Keras 3 ops."""
    from losslint.analysis.walk import walk

    families: set[str] = set()
    namespaces: dict[str, str] = {}

    def enter(node: cst.CSTNode) -> None:
        if isinstance(node, cst.Call):
            op = index.op_of(node)
            if op is not None and not op.is_method:
                fam = family(op)
                families.add(fam)
                ns = namespace(node)
                if ns is not None:
                    namespaces.setdefault(fam, ns)

    walk(expr, enter)
    if families & {"torch", "jax", "numpy", "method"}:
        return None
    if "keras-ops" in families and "keras-ops" in namespaces:
        return f"{namespaces['keras-ops']}.divide_no_nan"
    if families & {"tf", "keras-backend"}:
        tf = alias(index, "tensorflow")
        return f"{tf}.math.divide_no_nan" if tf else None
    return None


# ---- same-namespace twins, reductions, softmax, tf.print (LL104, LL106, LL107, LL403) ---------------------------
_TF_MATH_NS = ("tensorflow.math", "tensorflow.compat.v1.math", "tensorflow.compat.v2.math")


def tf_alias(index: ModuleIndex) -> str | None:
    """The name the file binds to TensorFlow (`tensorflow` or `tensorflow.compat.v1`), if any."""
    return alias(index, "tensorflow") or alias(index, "tensorflow.compat.v1")


def sibling(index: ModuleIndex, call: cst.Call, op: Op, name: str) -> str | None:
    """The function `name` (log1p, expm1, ...) next to `call`'s own function, as a callable expression: `tf.math.log`
    -> `tf.math.log1p`, `torch.exp` -> `torch.expm1`, `ops.log` -> `ops.log1p`. TensorFlow roots and the Keras
    backend (which lacks log1p / expm1) use `tf.math.<name>` when TensorFlow is imported. None when the framework has
    no such function or the call is a tensor method."""
    from losslint.analysis.ops import QUALIFIED_TO_OP

    fam = family(op)
    ns = namespace(call)
    if fam == "method" or ns is None:
        return None
    q_ns = op.qualified.rsplit(".", 1)[0]
    if fam in ("tf", "keras-backend"):
        if q_ns in _TF_MATH_NS:
            return f"{ns}.{name}"
        tf = alias(index, "tensorflow")
        return f"{tf}.math.{name}" if tf else None
    if f"{q_ns}.{name}" in QUALIFIED_TO_OP:
        return f"{ns}.{name}"
    return None


def _int_literal(node: cst.BaseExpression | None) -> int | None:
    if isinstance(node, cst.Integer):
        return int(node.value)
    if isinstance(node, cst.UnaryOperation) and isinstance(node.operator, cst.Minus) \
            and isinstance(node.expression, cst.Integer):
        return -int(node.expression.value)
    return None


# Keywords each family's sum / reduce_sum shares, meaning for meaning, with its logsumexp.
_LSE_KEYWORDS = {
    "tf": ("axis", "keepdims", "keep_dims", "reduction_indices", "name"),
    "keras-backend": ("axis", "keepdims"),
    "keras-ops": ("axis", "keepdims"),
    "torch": ("dim", "keepdim"),
    "method": ("dim", "keepdim"),
    "jax": ("axis", "keepdims"),
}
# How many positional arguments (the tensor included) the two signatures share.
_LSE_POSITIONAL = {"tf": 3, "keras-backend": 3, "keras-ops": 3, "torch": 3, "method": 2, "jax": 2}


def logsumexp_call(index: ModuleIndex, sum_call: cst.Call, sum_op: Op, exp_op: Op, x: cst.BaseExpression,
                   ) -> str | None:
    """`sum(exp(x), *rest)` rewritten as the framework's logsumexp of `x` with the same reduction arguments:
    `tf.reduce_logsumexp(x, 1, keep_dims=True)`, `K.logsumexp`, `ops.logsumexp`, `torch.logsumexp(x, dim=1)`,
    `x.logsumexp(1)`, `jax.nn.logsumexp(x, -1)`. None when an argument has no counterpart, torch has no `dim` (its
    logsumexp requires one), or the framework has no logsumexp (NumPy)."""
    fam = family(sum_op)
    if fam == "method" and family(exp_op) not in ("torch", "method"):
        return None  # `.sum()` of a NumPy / JAX array: no `.logsumexp()` method
    if fam not in _LSE_KEYWORDS:
        return None
    rest = list(sum_call.args) if fam == "method" else list(sum_call.args[1:])
    if fam != "method" and (not sum_call.args or sum_call.args[0].keyword is not None):
        return None
    n_pos = sum(1 for a in rest if a.keyword is None)
    if any(a.star for a in rest) or n_pos + (0 if fam == "method" else 1) > _LSE_POSITIONAL[fam]:
        return None
    if any(a.keyword is not None and a.keyword.value not in _LSE_KEYWORDS[fam] for a in rest):
        return None
    if fam in ("torch", "method") and not (n_pos or any(a.keyword is not None and a.keyword.value == "dim"
                                                         for a in rest)):
        return None
    kept = [code(a.value) if a.keyword is None else f"{a.keyword.value}={code(a.value)}" for a in rest]
    if fam == "method":
        return f"{atom(x)}.logsumexp({', '.join(kept)})"
    ns = namespace(sum_call)
    q_ns = sum_op.qualified.rsplit(".", 1)[0]
    if fam == "tf":
        func = f"{ns}.reduce_logsumexp" if ns is not None and q_ns in ("tensorflow", "tensorflow.compat.v1",
                                                                         "tensorflow.compat.v2") + _TF_MATH_NS else None
    elif fam in ("keras-backend", "keras-ops"):
        func = f"{ns}.logsumexp" if ns is not None else None
    elif fam == "torch":
        torch = alias(index, "torch")
        func = f"{torch}.logsumexp" if torch else None
    else:  # jax
        jnn = alias(index, "jax.nn")
        jax = alias(index, "jax")
        func = f"{jnn}.logsumexp" if jnn else (f"{jax}.nn.logsumexp" if jax else None)
    if func is None:
        return None
    return f"{func}({', '.join([code(x)] + kept)})"


def reduction_axis(sum_call: cst.Call, sum_op: Op) -> tuple[int, bool] | None:
    """(axis, keepdims) of a sum whose axis is one integer literal; None otherwise."""
    fam = family(sum_op)
    rest = list(sum_call.args) if fam == "method" else list(sum_call.args[1:])
    pos = [a.value for a in rest if a.keyword is None and not a.star]
    kw = {a.keyword.value: a.value for a in rest if a.keyword is not None}
    axis_node = pos[0] if pos else next((kw[k] for k in ("axis", "dim", "reduction_indices") if k in kw), None)
    keep_node = pos[1] if len(pos) > 1 and fam != "jax" else next(
        (kw[k] for k in ("keepdims", "keepdim", "keep_dims") if k in kw), None)
    axis = _int_literal(axis_node)
    if axis is None:
        return None
    keep = isinstance(keep_node, cst.Name) and keep_node.value == "True"
    return axis, keep


def softmax_call(index: ModuleIndex, sum_call: cst.Call, sum_op: Op, exp_op: Op, x: cst.BaseExpression,
                 axis: int) -> str | None:
    """softmax of `x` over `axis` in the framework of a hand-written `exp(x) / sum(exp(x), axis, keepdims=True)`:
    `tf.nn.softmax(x, axis=1)`, `K.softmax`, `ops.softmax`, `torch.softmax(x, dim=1)`, `jax.nn.softmax`."""
    fam = family(sum_op)
    ns = namespace(sum_call)
    if fam == "method":
        if family(exp_op) not in ("torch", "method"):
            return None
        return f"{atom(x)}.softmax(dim={axis})"
    if fam == "tf":
        tf = tf_alias(index)
        return f"{tf}.nn.softmax({code(x)}, axis={axis})" if tf else None
    if fam in ("keras-backend", "keras-ops") and ns is not None:
        return f"{ns}.softmax({code(x)}, axis={axis})"
    if fam == "torch":
        torch = alias(index, "torch")
        return f"{torch}.softmax({code(x)}, dim={axis})" if torch else None
    if fam == "jax":
        jnn = alias(index, "jax.nn")
        jax = alias(index, "jax")
        prefix = jnn or (f"{jax}.nn" if jax else None)
        return f"{prefix}.softmax({code(x)}, axis={axis})" if prefix else None
    return None


def ones_for(index: ModuleIndex, where_call: cst.Call, where_op: Op, x: cst.BaseExpression) -> str | None:
    """A harmless stand-in value for `x` inside a `where` of the same spelling: `tf.ones_like(x)` for TensorFlow
    (TF1's where and select do not broadcast a scalar), `1.0` for torch / JAX / NumPy / keras.ops (they broadcast)."""
    fam = family(where_op)
    if fam in ("tf", "keras-backend"):
        tf = tf_alias(index)
        return f"{tf}.ones_like({code(x)})" if tf else None
    if fam in ("torch", "jax", "numpy", "keras-ops"):
        return "1.0"
    return None

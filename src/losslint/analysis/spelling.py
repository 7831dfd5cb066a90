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

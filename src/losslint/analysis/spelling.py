"""How to write an op in the user's own spelling, for fixes: `tf.math.log` -> `tf.math.maximum`, `K.log` ->
`K.maximum(..., K.epsilon())`, `x.log()` -> `x.clamp(min=eps).log()`. Knows which namespaces have which ops, so a
fix never names a function the framework lacks."""

from __future__ import annotations

import libcst as cst

from losslint.analysis.calls import int_literal
from losslint.analysis.index import ModuleIndex, StmtInfo
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
    axis = int_literal(axis_node)
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


# ---- batch axes and batch sizes (LL201, LL303) -------------------------------------------------------------------
def non_batch_axes(fam: str, tensor: str, fewer: int = 0) -> str | None:
    """An `axis=` value naming every axis but the first (the batch) of a tensor whose rank is that of `tensor` less
    `fewer`, read from the static shape so it holds for any rank: `list(range(1, len(y_pred.shape)))` for
    TensorFlow and the Keras backend, a tuple for `keras.ops` (JAX reductions refuse a list). For a rank-1 tensor the
    range is empty and the reduction keeps every value."""
    n = f"len({tensor}.shape)" + (f" - {fewer}" if fewer else "")
    if fam in ("tf", "keras-backend"):
        return f"list(range(1, {n}))"
    if fam == "keras-ops":
        return f"tuple(range(1, {n}))"
    return None


_KERAS_BACKENDS = ("keras.backend", "tensorflow.keras.backend", "tf_keras.backend", "tensorflow.python.keras.backend")


def batch_size(index: ModuleIndex, tensor: str, dtype_of: str | None = None) -> str | None:
    """The run-time batch size of `tensor` in the module's own spelling: `tf.shape(x)[0]` (an int32 tensor, right in
    shapes), or with `dtype_of`, `tf.cast(tf.shape(x)[0], y_pred.dtype)` for arithmetic with float tensors. Uses
    TensorFlow when the module imports it, else `keras.ops` (`ops.shape(x)[0]`), else the Keras backend
    (`K.shape(x)[0]`); None when it imports none of them."""
    tf = tf_alias(index)
    if tf is not None:
        ns, cast = tf, f"{tf}.cast"
    else:
        ops = alias(index, "keras.ops")
        keras = alias(index, "keras")
        backend = next((a for a in (alias(index, m) for m in _KERAS_BACKENDS) if a), None)
        if ops is None and keras is not None:
            ops = f"{keras}.ops"
        if ops is not None:
            ns, cast = ops, f"{ops}.cast"
        elif backend is not None:
            ns, cast = backend, f"{backend}.cast"
        else:
            return None
    size = f"{ns}.shape({tensor})[0]"
    return f"{cast}({size}, {dtype_of}.dtype)" if dtype_of else size


# ---- loss flags, loss-class names and activation rewrites (LL601-LL604) ------------------------------------------
def name_count(scope: cst.CSTNode, name: str) -> int:
    """How many `Name` nodes spell `name` inside `scope` (the module or a function): bindings, reads, parameters,
    attribute names (`self.name`) and nested functions all count, so a count of 2 means one binding and one use."""
    from losslint.analysis.walk import walk

    count = 0

    def enter(node: cst.CSTNode) -> None:
        nonlocal count
        if isinstance(node, cst.Name) and node.value == name:
            count += 1

    walk(scope, enter)
    return count


def with_keyword(call: cst.Call, name: str, value: str) -> cst.Call:
    """`call` with the keyword argument `name=value` set: the existing one's value replaced, else appended after the
    last argument (keeping a multi-line call's layout and trailing comma)."""
    new_value = cst.parse_expression(value)
    args = list(call.args)
    for i, a in enumerate(args):
        if a.keyword is not None and a.keyword.value == name:
            args[i] = a.with_changes(value=new_value)
            return call.with_changes(args=args)
    new = cst.Arg(keyword=cst.Name(name), value=new_value,
                  equal=cst.AssignEqual(whitespace_before=cst.SimpleWhitespace(""),
                                        whitespace_after=cst.SimpleWhitespace("")))
    if not args:
        return call.with_changes(args=[new])
    last = args[-1]
    if isinstance(last.comma, cst.Comma):  # a trailing comma: the new argument takes it, on its own line
        if len(args) > 1 and isinstance(args[-2].comma, cst.Comma):
            between = args[-2].comma
        elif isinstance(call.whitespace_before_args, cst.ParenthesizedWhitespace):
            between = cst.Comma(whitespace_after=call.whitespace_before_args)  # `(\n    only_arg,\n)`
        else:
            between = cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))
        args[-1] = last.with_changes(comma=between)
        args.append(new.with_changes(comma=last.comma))
    else:
        args[-1] = last.with_changes(comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" ")))
        args.append(new)
    return call.with_changes(args=args)


def _unshadowed(index: ModuleIndex, local: str) -> bool:
    return local not in index.module_defs and local not in index.module_functions and local not in index.classes


def sibling_callable(index: ModuleIndex, func: cst.BaseExpression, name: str) -> str | None:
    """The callable `name` from the module `func` comes from, spelled with the file's imports: `nn.BCELoss` ->
    `nn.BCEWithLogitsLoss`, `F.binary_cross_entropy` -> `F.binary_cross_entropy_with_logits`, a bare imported
    `BCELoss` -> `BCEWithLogitsLoss` when that is imported too (else through an import of its module)."""
    q = index.qualify(func)
    if q is None or "." not in q:
        return None
    ns = q.rsplit(".", 1)[0]
    if isinstance(func, cst.Attribute):
        return f"{code(func.value)}.{name}"
    target = f"{ns}.{name}"
    for local, bound in index.imports.bindings.items():
        if bound == target and _unshadowed(index, local):
            return local
    parts = ns.split(".")
    for i in range(len(parts), 0, -1):  # `torch.nn` bound to `nn`, else `torch` -> `torch.nn.<name>`
        prefix = ".".join(parts[:i])
        for local, bound in index.imports.bindings.items():
            if bound == prefix and _unshadowed(index, local):
                return ".".join([local] + parts[i:] + [name])
    return None


# Keras packages, by the prefix of a qualified name, and the modules their `losses` can be reached from.
_KERAS_PACKAGES = (
    ("tensorflow.", ("tensorflow.keras", "tensorflow.compat.v1.keras", "tensorflow.compat.v2.keras")),
    ("tf_keras.", ("tf_keras",)),
    ("keras.", ("keras",)),
)


def _keras_package(qualified: str) -> tuple[str, ...] | None:
    if qualified.startswith("tensorflow.") and ".keras." not in qualified + ".":
        return None
    for prefix, packages in _KERAS_PACKAGES:
        if qualified.startswith(prefix):
            return packages
    return None


def keras_loss_class(index: ModuleIndex, cls_name: str, like: str | None) -> str | None:
    """The Keras loss class `cls_name` (`SparseCategoricalCrossentropy`) spelled with the file's imports, from the same
    Keras as the qualified name `like` (a layer or loss of the code at hand): `tf.keras.losses.X`, `keras.losses.X`,
    `losses.X`, or a bare `X` imported from a losses module. None when that Keras is not reachable from an import, or
    when `like` is None and the file imports more than one Keras."""
    if like is not None:
        packages = _keras_package(like)
        if packages is None:
            return None
        choices = [packages]
    else:
        choices = [p for _, p in _KERAS_PACKAGES
                   if any(_keras_package(b + ".x") == p for b in index.imports.bindings.values())]
        if len(choices) != 1:
            return None
    packages = choices[0]
    wanted: list[tuple[str, str]] = []  # (module a local name is bound to, what follows it)
    for pkg in packages:
        wanted += [(f"{pkg}.losses.{cls_name}", ""), (f"{pkg}.losses", cls_name), (pkg, f"losses.{cls_name}")]
    for pkg in packages:
        root = pkg.rsplit(".keras", 1)[0] if pkg.endswith(".keras") else None
        if root is not None:
            wanted.append((root, f"keras.losses.{cls_name}"))
    for module, rest in wanted:
        for local, bound in index.imports.bindings.items():
            if bound == module and _unshadowed(index, local):
                return f"{local}.{rest}" if rest else local
    return None


_ELEMENTWISE_METHODS = frozenset({"view", "reshape", "squeeze", "unsqueeze", "flatten", "contiguous", "float",
                                  "double", "to", "permute", "transpose", "type_as", "view_as", "clone", "cpu",
                                  "cuda"})
_DTYPE_METHODS = frozenset({"contiguous", "float", "double", "to", "type_as", "clone", "cpu", "cuda"})


def _literal(node: cst.BaseExpression) -> bool:
    if isinstance(node, (cst.Integer, cst.Float, cst.SimpleString)):
        return True
    if isinstance(node, cst.Name):
        return node.value in ("True", "False", "None")
    if isinstance(node, cst.UnaryOperation) and isinstance(node.operator, cst.Minus):
        return _literal(node.expression)
    return False


def _defs_in(index: ModuleIndex, stmt: StmtInfo, name: str) -> tuple[list, cst.CSTNode]:
    if stmt.func is not None:
        return stmt.func.defs.get(name, []), stmt.func.node
    return index.module_defs.get(name, []), index.module


def _stable_name(index: ModuleIndex, stmt: StmtInfo, name: str) -> bool:
    """`name` has one binding (a parameter or an assignment) in the scope of `stmt`, so it holds the same value
    wherever that scope reads it after the binding."""
    defs, _ = _defs_in(index, stmt, name)
    if stmt.func is not None and not defs:
        return False  # a global or a closure variable: may be rebound elsewhere
    return len(defs) == 1 and defs[0].kind in ("param", "assign")


def _single_use_binding(index: ModuleIndex, stmt: StmtInfo, name: str) -> tuple[cst.BaseExpression, StmtInfo] | None:
    """The value of `name` when its scope binds it once, by a plain one-target assignment before `stmt`, and reads
    it exactly once (at `stmt`): rewriting that value then changes nothing else."""
    defs, scope = _defs_in(index, stmt, name)
    if len(defs) != 1 or defs[0].kind != "assign" or defs[0].value is None or defs[0].stmt is None \
            or defs[0].index >= stmt.index:
        return None
    d = defs[0]
    node = d.stmt.node
    if not isinstance(node, cst.SimpleStatementLine) or len(node.body) != 1:
        return None
    small = node.body[0]
    if isinstance(small, cst.Assign):
        ok = len(small.targets) == 1 and isinstance(small.targets[0].target, cst.Name) and small.value is d.value
    elif isinstance(small, cst.AnnAssign):
        ok = isinstance(small.target, cst.Name) and small.value is d.value
    else:
        ok = False
    if not ok or name_count(scope, name) != 2:
        return None
    return d.value, d.stmt


def activation_edits(index: ModuleIndex, pred: cst.BaseExpression, act: cst.Call, stmt: StmtInfo, new: str, *,
                     atomic: bool, elementwise: bool) -> list[tuple[cst.CSTNode, str]] | None:
    """Edits (node, new text) that make the loss argument `pred` compute what it computes now with the activation
    call `act` replaced by `new` (its operand, to pass the logits; `log_softmax(...)` for a log-probability).

    `act` is reached from `pred` through names, `identity`/`cast` and, when `elementwise` (a sigmoid, or a rewrite
    that commutes with indexing and reshapes), tensor reshape methods and indexing; a softmax stripped to its logits
    only through dtype/device methods. A name on the way is rewritten where it is assigned when that assignment is
    its only binding and the loss its only reader; else, when the name holds `act` itself and every argument of `act`
    is a literal or a name bound once, the name is replaced at the loss by `new`. `atomic`: `new` needs no
    parentheses after a `.` or before `[`. None when no such rewrite exists."""
    from losslint.analysis.index import operand

    methods = _ELEMENTWISE_METHODS if elementwise else _DTYPE_METHODS

    def use_site(name_node: cst.Name, s: StmtInfo) -> list[tuple[cst.CSTNode, str]] | None:
        got = _assigned(name_node.value, s)
        if got is None or got[0] is not act:
            return None
        parts: list[cst.BaseExpression] = [a.value for a in act.args]
        if isinstance(act.func, cst.Attribute) and index.qualify(act.func) is None:
            parts.append(act.func.value)
        for part in parts:
            if not (_literal(part) or (isinstance(part, cst.Name) and _stable_name(index, s, part.value))):
                return None
        return [(name_node, new)]

    def _assigned(name: str, s: StmtInfo) -> tuple[cst.BaseExpression, StmtInfo] | None:
        defs, _ = _defs_in(index, s, name)
        if len(defs) != 1 or defs[0].kind != "assign" or defs[0].value is None or defs[0].stmt is None:
            return None
        return defs[0].value, defs[0].stmt

    def go(expr: cst.BaseExpression, s: StmtInfo, bare: bool, depth: int) -> list[tuple[cst.CSTNode, str]] | None:
        if depth > 8:
            return None
        if expr is act:
            return [(act, new if atomic or bare else f"({new})")]
        if isinstance(expr, cst.Call):
            op = index.op_of(expr)
            if op is not None and not op.is_method:
                if op.name not in ("identity", "cast"):
                    return None
                inner = operand(expr, op)
                return go(inner, s, True, depth + 1) if inner is not None else None
            if isinstance(expr.func, cst.Attribute) and expr.func.attr.value in methods \
                    and index.qualify(expr.func) is None:
                return go(expr.func.value, s, False, depth + 1)
            return None
        if isinstance(expr, cst.Subscript) and elementwise:
            return go(expr.value, s, False, depth + 1)
        if isinstance(expr, cst.Name):
            got = _single_use_binding(index, s, expr.value)
            if got is not None:
                return go(got[0], got[1], True, depth + 1)
            return use_site(expr, s)
        return None

    return go(pred, stmt, True, 0)


def apply_inside(call: cst.Call, edits: list[tuple[cst.CSTNode, str]],
                 ) -> tuple[cst.Call, list[tuple[cst.CSTNode, str]]]:
    """Apply the edits whose node lies inside `call` to a copy of it; return the copy and the edits left outside."""
    from losslint.analysis.walk import walk

    inside: set[int] = set()

    def enter(node: cst.CSTNode) -> None:
        inside.add(id(node))

    walk(call, enter)
    mapping = {id(node): cst.parse_expression(text) for node, text in edits if id(node) in inside and node is not call}
    rest = [(node, text) for node, text in edits if id(node) not in mapping]

    class _Replace(cst.CSTTransformer):
        def on_leave(self, original_node, updated_node):  # noqa: ANN001, ANN201
            return mapping.get(id(original_node), updated_node)

    return call.visit(_Replace()) if mapping else call, rest  # type: ignore[return-value]

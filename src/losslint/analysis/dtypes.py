"""Dtypes: which floating-point format a loss computes in, and what a Python literal becomes in it.

Three things live here:

* exact rounding of a float to float16 / bfloat16 / float32 / float64 (numpy arithmetic for the IEEE formats, an exact
  bit-level rounding for bfloat16, which numpy lacks), so rules decide "does this eps survive?" by computing, never by
  hand-coded thresholds;
* the module's dtype facts: a global policy (`set_global_policy('mixed_float16')`, `mixed_precision.experimental.
  set_policy`, `Policy('mixed_bfloat16')`, `keras.config.set_dtype_policy`, `set_floatx('float16')`, each policy
  setting with its statement in `policy_settings`, so model_flow can tell which one is in force where),
  `torch.set_default_dtype`, `jax_enable_x64`), PyTorch `autocast` blocks (and the same-module functions called inside
  them), Keras' `set_epsilon`, and whether an output layer is pinned to float32 (the mixed-precision guide's advice);
* the dtype of a tensor expression when the code states it: `tf.cast(x, tf.float16)`, `x.half()`, `x.to(torch.
  float16)`, `x.bfloat16()`, `x.astype(jnp.float16)`, `dtype=tf.float16`, followed through local assignments.

float32 is the default. Nothing is imported from the user's code or from a framework.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from weakref import WeakKeyDictionary

import libcst as cst
import numpy as np

from losslint.analysis.calls import kwarg, positional
from losslint.analysis.index import FuncInfo, ModuleIndex, StmtInfo, function_named
from losslint.analysis.names import dotted_name

FLOAT16 = "float16"
BFLOAT16 = "bfloat16"
FLOAT32 = "float32"
FLOAT64 = "float64"
LOW_PRECISION = frozenset({FLOAT16, BFLOAT16})

# ---- exact rounding --------------------------------------------------------------------------------------------
_NUMPY_TYPES = {FLOAT16: np.float16, FLOAT32: np.float32, FLOAT64: np.float64}
# (explicit mantissa bits, minimum normal exponent, maximum finite value) for formats numpy does not have
_BFLOAT16 = (7, -126, 3.3895313892515355e38)


def _round_bits(x: float, mant_bits: int, emin: int, max_finite: float) -> float:
    """Round a float64 to a binary format with `mant_bits` explicit mantissa bits, round-half-to-even, with
    subnormals. Exact: scaling by a power of two and Python's `round` on a float are exact operations."""
    if x == 0 or not math.isfinite(x):
        return x
    _, e = math.frexp(abs(x))  # |x| = m * 2**e, m in [0.5, 1)
    q = max(e - 1 - mant_bits, emin - mant_bits)  # the quantum (unit in the last place) at |x|
    r = math.ldexp(float(round(math.ldexp(abs(x), -q))), q)
    if r > max_finite:
        r = math.inf
    return math.copysign(r, x)


def round_to(x: float, dtype: str) -> float:
    """The value the Python float `x` becomes when converted to `dtype` (round to nearest, ties to even)."""
    if dtype == BFLOAT16:
        return _round_bits(float(x), *_BFLOAT16)
    t = _NUMPY_TYPES.get(dtype, np.float32)
    with np.errstate(over="ignore", under="ignore"):
        return float(t(x))


def vanishes(base: float, eps: float, dtype: str) -> bool:
    """Does `base + eps` (Python float arithmetic, then converted) equal `base` in `dtype`, with eps != 0?

    `vanishes(1, -1e-8, "float32")` is True (`1 - 1e-8` is 1.0 in float32); `vanishes(1, -1e-7, "float32")` is False.
    The same answer holds when the sum is computed in the dtype itself (`np.float32(1) - np.float32(1e-8)`)."""
    if eps == 0 or base == 0:
        return False
    return round_to(base + eps, dtype) == round_to(base, dtype)


def underflows(eps: float, dtype: str) -> bool:
    """Is a nonzero `eps` exactly 0 in `dtype`? (`1e-8` in float16: the smallest subnormal is about 6e-8.)"""
    return eps != 0 and round_to(eps, dtype) == 0


def smallest_safe_eps(dtype: str, near: float = 1.0) -> float:
    """The smallest power of ten that survives both as itself and next to `near` in `dtype` (1e-7 for float32 near
    1, 1e-3 for float16, 1e-2 for bfloat16): the eps to suggest."""
    for k in range(1, 40):
        eps = 10.0 ** -(k + 1)
        if vanishes(near, -eps, dtype) or vanishes(near, eps, dtype) or underflows(eps, dtype):
            return 10.0 ** -k
    return 10.0 ** -39


# ---- dtype spellings -------------------------------------------------------------------------------------------
_DTYPE_WORDS = {
    "float16": FLOAT16, "half": FLOAT16, "f16": FLOAT16, "mixed_float16": FLOAT16,
    "bfloat16": BFLOAT16, "mixed_bfloat16": BFLOAT16, "bf16": BFLOAT16,
    "float32": FLOAT32, "float": FLOAT32, "single": FLOAT32, "f32": FLOAT32,
    "float64": FLOAT64, "double": FLOAT64, "f64": FLOAT64,
}
# names that are dtypes only as framework attributes (`torch.float`, `torch.half`), not as bare Python names
_ATTR_ONLY = frozenset({"float", "half", "double", "single"})


def dtype_named(expr: cst.BaseExpression | None) -> str | None:
    """`tf.float16`, `torch.half`, `jnp.bfloat16`, `np.float64`, `'float16'`, `"mixed_float16"` -> canonical name."""
    if expr is None:
        return None
    if isinstance(expr, cst.SimpleString):
        return _DTYPE_WORDS.get(expr.evaluated_value.strip().lower()) if isinstance(expr.evaluated_value, str) \
            else None
    if isinstance(expr, cst.Attribute):
        return _DTYPE_WORDS.get(expr.attr.value)
    if isinstance(expr, cst.Name) and expr.value not in _ATTR_ONLY:
        return _DTYPE_WORDS.get(expr.value) if expr.value.startswith(("float", "bfloat")) else None
    return None


def _line(index: ModuleIndex, node: cst.CSTNode) -> str:
    """A short quote of a statement, for messages: `set_global_policy('mixed_float16')`."""
    text = " ".join(index.module.code_for_node(node).split())
    return text if len(text) <= 60 else text[:57] + "..."


# ---- facts -----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DtypeFact:
    """A computation dtype and why we believe it (for messages)."""

    dtype: str
    reason: str

    @property
    def low_precision(self) -> bool:
        return self.dtype in LOW_PRECISION


DEFAULT = DtypeFact(FLOAT32, "float32, the default")


@dataclass(frozen=True, eq=False)
class PolicySetting:
    """One call that sets the global Keras dtype policy: `set_global_policy("mixed_float16")`, `mixed_precision.
    experimental.set_policy(policy)`, `keras.config.set_dtype_policy(...)`. `name` is the policy's name as written
    ("mixed_float16", "mixed_bfloat16", "float32", "float16"; `None` resets to "float32"), or None when the code does
    not say (`set_global_policy(args.policy)`); `dtype` is its compute dtype (None when unknown)."""

    name: str | None
    dtype: str | None
    call: cst.Call
    stmt: StmtInfo

# PyTorch autocast runs these in float32 whatever their inputs (the autocast op reference, "CUDA ops that can autocast
# to float32"): their outputs are float32 inside an autocast region.
_AUTOCAST_FLOAT32_OPS = frozenset({"log", "log2", "log10", "log1p", "exp", "expm1", "pow", "sum", "prod", "cumsum",
                                   "softmax", "log_softmax", "softplus", "norm", "rsqrt", "reciprocal", "fused_loss"})
# Elementwise ops whose result has their first operand's dtype.
_PASS_OPS = frozenset({"identity", "clip", "maximum", "minimum", "abs", "negative", "square", "sqrt", "sigmoid",
                       "add", "subtract", "multiply", "divide", "mean", "max", "min", "where"})
_CAST_METHODS = {"half": FLOAT16, "bfloat16": BFLOAT16, "float": FLOAT32, "double": FLOAT64}
_FRAMEWORK_DEFAULT_F64 = ("numpy",)


class ModuleDtypes:
    """The dtype facts of one module. Get it with `dtypes_of(index)` (built once per module, on first use)."""

    def __init__(self, index: ModuleIndex) -> None:
        self.index = index
        self.global_dtype: DtypeFact | None = None  # set_floatx('float16'), torch.set_default_dtype(torch.float16)
        self.mixed: DtypeFact | None = None  # a mixed_float16 / mixed_bfloat16 policy
        self.mixed_keras3 = False  # the policy was set through Keras 3 (`keras.*`, not `tensorflow.keras.*`)
        self.float32_output = False  # some layer is built with dtype='float32' (the guide's float32 output layer)
        self.jax_x64 = False
        self.keras_epsilon: float | None = None  # K.set_epsilon(v)
        self.policy_settings: list[PolicySetting] = []  # every global policy setting, in statement order
        self._autocast_blocks: list[tuple[int, DtypeFact]] = []  # (id(with body), dtype)
        self._autocast_funcs: dict[int, DtypeFact] = {}  # id(FunctionDef) -> dtype
        self._scan()

    # ---- module scan ---------------------------------------------------------------------------------------
    def _scan(self) -> None:
        index = self.index
        for call, stmt in index.all_calls:
            q = index.qualify(call.func) or ""
            leaf = q.rsplit(".", 1)[-1] if q else (call.func.attr.value if isinstance(call.func, cst.Attribute)
                                                  else "")
            args = positional(call)
            first = args[0] if args else None
            if q and ("mixed_precision" in q or q.endswith("config.set_dtype_policy")) and leaf in (
                    "set_global_policy", "set_policy", "set_dtype_policy", "Policy"):
                d = self._policy_dtype(first or kwarg(call, "name", "policy"), stmt)
                if d in LOW_PRECISION:
                    self.mixed = DtypeFact(d, f"the mixed_{d} policy: `{_line(index, call)}`")
                    self.mixed_keras3 = q.split(".", 1)[0] == "keras"
                if leaf != "Policy":
                    name = self._policy_name(first or kwarg(call, "policy", "name"), stmt)
                    self.policy_settings.append(PolicySetting(
                        name, (_DTYPE_WORDS.get(name) if name is not None else None) or d, call, stmt))
            elif q and leaf == "set_floatx":
                d = dtype_named(first)
                if d is not None:
                    self.global_dtype = DtypeFact(d, f"set by `{_line(index, call)}`")
            elif q and q.startswith("torch.") and leaf == "set_default_dtype":
                d = dtype_named(first)
                if d is not None:
                    self.global_dtype = DtypeFact(d, f"set by `{_line(index, call)}`")
            elif q and leaf == "set_epsilon" and first is not None:
                v = literal_number(first)
                if v is not None:
                    self.keras_epsilon = v
            elif q.startswith("jax") and q.endswith("config.update") and len(args) >= 2 \
                    and isinstance(args[0], cst.SimpleString) and args[0].evaluated_value == "jax_enable_x64" \
                    and isinstance(args[1], cst.Name) and args[1].value == "True":
                self.jax_x64 = True
            d_kw = kwarg(call, "dtype")
            if d_kw is not None and dtype_named(d_kw) == FLOAT32:
                name = dotted_name(call.func) or ""
                if name.rsplit(".", 1)[-1][:1].isupper():  # a layer constructor: Dense(..., dtype='float32')
                    self.float32_output = True
        self.policy_settings.sort(key=lambda p: p.stmt.index)
        for w in index.withs:
            fact = self._autocast(w.node)
            if fact is not None:
                body = w.node.body
                self._autocast_blocks.append((id(body), fact))
                self._mark_called(w.node, fact)

    def _policy_dtype(self, expr: cst.BaseExpression | None, stmt: StmtInfo) -> str | None:
        d = dtype_named(expr)
        if d is not None or not isinstance(expr, cst.Name):
            return d
        # policy = mixed_precision.Policy('mixed_float16'); set_global_policy(policy)
        defs = (stmt.func.defs if stmt.func is not None else self.index.module_defs).get(expr.value, [])
        for dfn in defs:
            if isinstance(dfn.value, cst.Call):
                args = positional(dfn.value)
                d = dtype_named(args[0] if args else kwarg(dfn.value, "name"))
                if d is not None:
                    return d
        return None

    def _policy_name(self, expr: cst.BaseExpression | None, stmt: StmtInfo, depth: int = 0) -> str | None:
        """The name of the policy an argument of `set_global_policy` stands for: a string, `None` (the floatx
        default), `Policy("mixed_float16")`, or a local name bound once to one of these."""
        if expr is None or depth > 3:
            return None
        if isinstance(expr, cst.SimpleString):
            v = expr.evaluated_value
            return v.strip().lower() if isinstance(v, str) else None
        if isinstance(expr, cst.Name) and expr.value == "None":
            return FLOAT32
        if isinstance(expr, cst.Call):
            q = self.index.qualify(expr.func) or ""
            if q.rsplit(".", 1)[-1] in ("Policy", "DTypePolicy", "DTypePolicyMap", "FloatDTypePolicy") \
                    and ("mixed_precision" in q or q.startswith(("keras.", "tensorflow.keras.", "tf_keras."))):
                args = positional(expr)
                return self._policy_name(args[0] if args else kwarg(expr, "name"), stmt, depth + 1)
            return None
        if isinstance(expr, cst.Name):
            values = reaching_values(self.index, expr.value, stmt)
            if values is not None and len(values) == 1:
                return self._policy_name(values[0][0], values[0][1], depth + 1)
        return None

    def _autocast(self, node: cst.With) -> DtypeFact | None:
        for item in node.items:
            call = item.item
            if not isinstance(call, cst.Call):
                continue
            q = self.index.qualify(call.func) or ""
            if not (q.startswith("torch") and q.endswith("autocast")):
                continue
            enabled = kwarg(call, "enabled")
            if isinstance(enabled, cst.Name) and enabled.value == "False":
                return None
            d = dtype_named(kwarg(call, "dtype"))
            if d is None:
                device = kwarg(call, "device_type")
                args = positional(call)
                if device is None and args and q not in ("torch.cuda.amp.autocast", "torch.cpu.amp.autocast"):
                    device = args[0]
                cpu = ".cpu." in q or (isinstance(device, cst.SimpleString) and device.evaluated_value == "cpu")
                d = BFLOAT16 if cpu else FLOAT16
            if d in LOW_PRECISION:
                return DtypeFact(d, f"inside `{_line(self.index, call)}`")
        return None

    def _mark_called(self, with_node: cst.With, fact: DtypeFact) -> None:
        """Same-module functions called inside an autocast block run under autocast too (two levels deep)."""
        index = self.index
        body_id = id(with_node.body)
        frontier: list[FuncInfo] = []
        for call, stmt in index.all_calls:
            if body_id in stmt.path:
                f = function_named(index, call.func, stmt)
                if f is not None:
                    frontier.append(f)
        for _ in range(2):
            nxt: list[FuncInfo] = []
            for f in frontier:
                if id(f.node) in self._autocast_funcs:
                    continue
                self._autocast_funcs[id(f.node)] = fact
                for call, stmt in f.calls:
                    g = function_named(index, call.func, stmt)
                    if g is not None:
                        nxt.append(g)
            frontier = nxt

    # ---- questions ----------------------------------------------------------------------------------------
    def autocast_at(self, stmt: StmtInfo | None) -> DtypeFact | None:
        if stmt is None:
            return None
        for body_id, fact in self._autocast_blocks:
            if body_id in stmt.path:
                return fact
        f = stmt.func
        while f is not None:
            fact = self._autocast_funcs.get(id(f.node))
            if fact is not None:
                return fact
            f = f.parent
        return None

    def epsilon(self) -> float:
        """The value of `K.epsilon()` / `keras.config.epsilon()` in this module."""
        return self.keras_epsilon if self.keras_epsilon is not None else 1e-7

    def tensor_dtype(self, expr: cst.BaseExpression, stmt: StmtInfo | None, depth: int = 0) -> DtypeFact | None:
        """The dtype a tensor expression provably has from the code itself (a cast, `.half()`, `dtype=`), or None."""
        if stmt is None or depth > 12:
            return None
        if isinstance(expr, cst.Call):
            return self._call_dtype(expr, stmt, depth)
        if isinstance(expr, cst.BinaryOperation):
            sides = [self.tensor_dtype(s, stmt, depth + 1) for s in (expr.left, expr.right)
                     if literal_number(s) is None]
            known = [s for s in sides if s is not None]
            if known and len(known) == len(sides):
                return max(known, key=lambda f: _WIDTH[f.dtype])
            return None
        if isinstance(expr, cst.UnaryOperation):
            return self.tensor_dtype(expr.expression, stmt, depth + 1)
        if isinstance(expr, cst.Subscript):
            return self.tensor_dtype(expr.value, stmt, depth + 1)
        if isinstance(expr, cst.Name):
            values = reaching_values(self.index, expr.value, stmt)
            if not values:
                return None
            facts = [self.tensor_dtype(v, s, depth + 1) for v, s in values]
            if all(f is not None for f in facts) and len({f.dtype for f in facts}) == 1:  # type: ignore[union-attr]
                return facts[0]
        return None

    def _call_dtype(self, call: cst.Call, stmt: StmtInfo, depth: int) -> DtypeFact | None:
        func = call.func
        quoted = f"`{_line(self.index, call)}`"
        if isinstance(func, cst.Attribute):
            method = func.attr.value
            if method in _CAST_METHODS and not positional(call) and self.index.qualify(func) is None:
                return DtypeFact(_CAST_METHODS[method], f"{quoted} casts to {_CAST_METHODS[method]}")
            if method in ("to", "type", "astype") and self.index.qualify(func) is None:
                for a in positional(call) + [v for v in (kwarg(call, "dtype"),) if v is not None]:
                    d = dtype_named(a)
                    if d is not None:
                        return DtypeFact(d, f"{quoted} casts to {d}")
                if method == "to":
                    return self.tensor_dtype(func.value, stmt, depth + 1)  # `.to(device)` keeps the dtype
        d = dtype_named(kwarg(call, "dtype"))
        if d is not None:
            return DtypeFact(d, f"{quoted} is {d}")
        op = self.index.op_of(call)
        if op is None:
            return None
        if op.name == "cast":
            args = positional(call)
            d = dtype_named(args[1] if len(args) > 1 else None)
            if d is not None:
                return DtypeFact(d, f"{quoted} casts to {d}")
            return None
        if op.framework in _FRAMEWORK_DEFAULT_F64 and not op.is_method:
            return DtypeFact(FLOAT64, "NumPy computes in float64")
        if op.framework == "jax" and self.jax_x64:
            return DtypeFact(FLOAT64, "jax_enable_x64 is on")
        if op.name in _AUTOCAST_FLOAT32_OPS and op.framework in ("torch", "tensor-method") \
                and self.autocast_at(stmt) is not None:
            return DtypeFact(FLOAT32, "autocast runs this op in float32")
        if op.name in _PASS_OPS:
            if op.is_method and isinstance(func, cst.Attribute):
                return self.tensor_dtype(func.value, stmt, depth + 1)
            args = positional(call)
            if args:
                return self.tensor_dtype(args[0], stmt, depth + 1)
        return None


_WIDTH = {FLOAT16: 1, BFLOAT16: 1, FLOAT32: 2, FLOAT64: 3}
_CACHE: "WeakKeyDictionary[ModuleIndex, ModuleDtypes]" = WeakKeyDictionary()


def dtypes_of(index: ModuleIndex) -> ModuleDtypes:
    """The module's dtype facts, computed once per `ModuleIndex`."""
    found = _CACHE.get(index)
    if found is None:
        found = ModuleDtypes(index)
        _CACHE[index] = found
    return found


# ---- constants -------------------------------------------------------------------------------------------------
def literal_number(node: cst.BaseExpression) -> float | None:
    """The value of a numeric literal, possibly signed (`1e-8`, `-1`); None for anything else."""
    if isinstance(node, (cst.Integer, cst.Float)):
        return float(node.evaluated_value)
    if isinstance(node, cst.UnaryOperation) and isinstance(node.operator, (cst.Minus, cst.Plus)):
        inner = literal_number(node.expression)
        if inner is None:
            return None
        return -inner if isinstance(node.operator, cst.Minus) else inner
    return None


def reaching_values(index: ModuleIndex, name: str, stmt: StmtInfo
                     ) -> list[tuple[cst.BaseExpression, StmtInfo]] | None:
    """The expressions a name can hold at `stmt` (assignments before it in its function, or the module's for a
    module constant); None when a binding is not a plain assignment (a parameter, a loop target...)."""
    func = stmt.func
    use = stmt.index
    while func is not None:
        defs = func.defs.get(name)
        if defs:
            before = [d for d in defs if d.index < use] or []
            if not before or any(d.kind not in ("assign",) or d.value is None or d.stmt is None for d in before):
                return None
            last = before[-1]
            if last.path == stmt.path[: len(last.path)]:
                before = [last]  # runs on every path to the use
            return [(d.value, d.stmt) for d in before]  # type: ignore[misc]
        use = 1 << 60
        func = func.parent
    defs = index.module_defs.get(name)
    if not defs or any(d.kind != "assign" or d.value is None or d.stmt is None for d in defs):
        return None
    return [(d.value, d.stmt) for d in defs]  # type: ignore[misc]


def constant_value(index: ModuleIndex, expr: cst.BaseExpression, stmt: StmtInfo | None, depth: int = 0
                   ) -> float | None:
    """The exact Python value of a constant expression, as Python computes it (in float64): a literal, `1 - 1e-8`,
    `K.epsilon()`, a name bound only to constants, a parameter's literal default, `self.eps` set from one. None when
    the value is not a compile-time constant."""
    if stmt is None or depth > 12:
        return None
    lit = literal_number(expr)
    if lit is not None:
        return lit
    if isinstance(expr, cst.BinaryOperation):
        a = constant_value(index, expr.left, stmt, depth + 1)
        if a is None:
            return None
        b = constant_value(index, expr.right, stmt, depth + 1)
        if b is None:
            return None
        op = expr.operator
        try:
            if isinstance(op, cst.Add):
                return a + b
            if isinstance(op, cst.Subtract):
                return a - b
            if isinstance(op, cst.Multiply):
                return a * b
            if isinstance(op, cst.Divide):
                return a / b
            if isinstance(op, cst.Power):
                r = a ** b
                return float(r) if isinstance(r, (int, float)) else None
        except (ZeroDivisionError, OverflowError):
            return None
        return None
    if isinstance(expr, cst.UnaryOperation) and isinstance(expr.operator, cst.Minus):
        v = constant_value(index, expr.expression, stmt, depth + 1)
        return -v if v is not None else None
    if isinstance(expr, cst.Call):
        op = index.op_of(expr)
        if op is not None and op.name == "epsilon" and not expr.args:
            return dtypes_of(index).epsilon()
        if op is not None and op.name == "constant":
            args = positional(expr)
            return constant_value(index, args[0], stmt, depth + 1) if len(args) == 1 else None
        return None
    if isinstance(expr, cst.Name):
        return _name_constant(index, expr.value, stmt, depth)
    if isinstance(expr, cst.Attribute) and isinstance(expr.value, cst.Name) and expr.value.value == "self":
        f = stmt.func
        while f is not None and f.cls is None:
            f = f.parent
        if f is None or f.cls is None:
            return None
        defs = f.cls.self_attrs.get(expr.attr.value, [])
        values = {constant_value(index, d.value, d.stmt, depth + 1) if d.value is not None else None for d in defs}
        if len(values) == 1:
            return values.pop()
    return None


def _name_constant(index: ModuleIndex, name: str, stmt: StmtInfo, depth: int) -> float | None:
    func = stmt.func
    use = stmt.index
    while func is not None:
        defs = func.defs.get(name)
        if defs:
            before = [d for d in defs if d.index < use or d.kind == "param"]
            if not before:
                return None
            values = set()
            for d in before:
                if d.kind == "param":
                    v = literal_number(d.value) if d.value is not None else None
                elif d.kind == "assign" and d.value is not None and d.stmt is not None:
                    v = constant_value(index, d.value, d.stmt, depth + 1)
                else:
                    v = None
                if v is None:
                    return None
                values.add(v)
            return values.pop() if len(values) == 1 else None
        use = 1 << 60
        func = func.parent
    defs = index.module_defs.get(name)
    if not defs:
        return None
    values = set()
    for d in defs:
        if d.kind != "assign" or d.value is None or d.stmt is None:
            return None
        v = constant_value(index, d.value, d.stmt, depth + 1)
        if v is None:
            return None
        values.add(v)
    return values.pop() if len(values) == 1 else None

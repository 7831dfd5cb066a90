"""LL108 epsilon-below-resolution: an eps that vanishes in the dtype the loss computes in."""

from __future__ import annotations

import libcst as cst

from losslint.analysis.dtypes import (
    DEFAULT,
    DtypeFact,
    constant_value,
    dtypes_of,
    reaching_values,
    smallest_safe_eps,
    underflows,
    vanishes,
)
from losslint.analysis.names import dotted_name
from losslint.analysis.walk import walk
from losslint.rules.base import FixSpec, Invalid, Replacement, Rule, Valid

# Values that carry the model's (low-precision) dtype under a mixed policy or autocast; labels and masks come from the
# data pipeline in float32.
_PREDICTION = frozenset({"y_pred", "probability", "sigmoid", "softmax", "logits"})
# Scopes whose inputs Keras 3 casts to the loss dtype (floatx, float32) whatever the layers' policy.
_KERAS3_CAST_SCOPES = frozenset({"compile", "loss-class"})
# Functions with a singularity at +-1 that a bound near 1 is meant to avoid.
_INVERSE_TRIG = frozenset({"acos", "arccos", "asin", "arcsin", "atanh", "arctanh"})
# Ops whose argument a vanished eps leaves exposed to 0.
_SINGULAR_OPS = frozenset({"log", "log2", "log10", "sqrt", "rsqrt", "reciprocal", "divide"})


def _num(v: float) -> str:
    return f"{v:g}"


def _all_literal(node: cst.CSTNode) -> bool:
    """Is an expression made of numeric literals only (so quoting it already shows the numbers)?"""
    if isinstance(node, (cst.Integer, cst.Float)):
        return True
    if isinstance(node, cst.UnaryOperation):
        return _all_literal(node.expression)
    if isinstance(node, cst.BinaryOperation):
        return _all_literal(node.left) and _all_literal(node.right)
    return False


# A new eps above this moves ordinary values (a probability of 0.01, a sum of 1) by more than float32 noise.
_MEASURABLE = 1e-6


def _float32(index, tensor: cst.BaseExpression, call_op) -> str | None:  # noqa: ANN001
    """`tensor` cast to float32 in the spelling of the framework call around it, or None."""
    from losslint.analysis.spelling import alias, atom, code, family, namespace, tf_alias

    if call_op is None:
        return None
    call, op = call_op
    fam, ns = family(op), namespace(call)
    if fam == "method":
        return None  # the tensor's framework is not known from a method call
    if fam in ("jax", "numpy") and ns:
        return f"{atom(tensor)}.astype({ns}.float32)"
    if fam == "torch":
        return f"{atom(tensor)}.float()" if alias(index, "torch") else None
    if fam == "tf":
        tf = tf_alias(index)
        return f"{tf}.cast({code(tensor)}, {tf}.float32)" if tf else None
    if fam in ("keras-ops", "keras-backend") and ns:
        return f"{ns}.cast({code(tensor)}, \"float32\")"
    return None


def _eps_literal(v: float) -> str:
    """10 ** -k as a literal: `1e-7`, `1e-3`."""
    import math

    return f"1e-{round(-math.log10(v))}"


def _val(v: float) -> str:
    """A rounded result as a float literal: `1.0`, `-1.0`."""
    return repr(float(v)) if float(v).is_integer() else f"{v:g}"


class EpsilonBelowResolution(Rule):
    code = "LL108"
    name = "epsilon-below-resolution"
    summary = "eps that vanishes in the computation dtype: 1 - 1e-8 == 1 in float32, 1e-8 == 0 in float16"
    what_it_does = (
        "Finds a stabilising eps that the dtype the loss computes in cannot represent: a bound `1 - eps` / `-1 + eps` "
        "of a `clip`/`clamp`/`minimum` that rounds back to exactly 1 (`1 - 1e-8` in float32, `1 - K.epsilon()` in "
        "float16), `(1 + eps) - p` under a log or a division, and an eps added to a tensor or used as a lower clip "
        "bound that is exactly 0 in float16 (`1e-8`). The computation dtype comes from the module: a "
        "`mixed_float16`/`mixed_bfloat16` policy, `set_floatx`, `torch.set_default_dtype`, a PyTorch `autocast` "
        "region, or an explicit cast (`tf.cast(x, tf.float16)`, `x.half()`, `x.astype(jnp.float16)`, "
        "`dtype=tf.float16`); float32 otherwise. Whether an eps survives is decided by rounding it exactly in that "
        "dtype, not by a threshold."
    )
    why_bad = (
        "Float32 numbers just below 1 are 2^-24 (about 6e-8) apart, so `1 - 1e-8` is exactly 1.0: "
        "`clip(p, 1e-8, 1 - 1e-8)` does not keep p below 1, and `log(1 - p)` is still -inf at p = 1, the NaN the "
        "eps was written to prevent (NVIDIA/apex#358). In float16 the spacing below 1 is about 5e-4 and the smallest "
        "number is about 6e-8, so `1 - 1e-7` is 1 and `1e-8` is 0: Keras' default `K.epsilon()` guards nothing "
        "under `set_floatx('float16')` (keras-team/keras#11832)."
    )
    example = """\
        def bce(y_true, y_pred):
            y_pred = tf.clip_by_value(y_pred, 1e-8, 1 - 1e-8)
            return -tf.reduce_mean(y_true * tf.math.log(y_pred) + (1 - y_true) * tf.math.log(1 - y_pred))
    """
    use_instead = """\
        def bce(y_true, y_pred):
            y_pred = tf.clip_by_value(y_pred, 1e-7, 1 - 1e-7)  # 1e-7 survives next to 1 in float32
            return -tf.reduce_mean(y_true * tf.math.log(y_pred) + (1 - y_true) * tf.math.log(1 - y_pred))
        # under float16: cast to float32 first (tf.cast(y_pred, tf.float32)), or use an eps of 1e-3
    """
    fix_safety = (
        "When the eps is a numeric literal written at the reported place, the fix replaces that literal with the "
        "smallest power of ten the computation dtype keeps (`smallest_safe_eps`: 1e-7 in float32, 1e-3 in float16, "
        "1e-2 in bfloat16); an eps held in a name, a parameter, a module constant or `K.epsilon()` may be used "
        "elsewhere and gets no fix. Safe for a clip / clamp / minimum bound next to 1 (`1 - 1e-8` -> `1 - 1e-7`): "
        "only inputs within the new eps of the bound, i.e. saturated predictions, are clipped differently, exactly "
        "where the original gave -inf/NaN. For an eps added to a tensor, a lower clip bound that was 0, or "
        "`(1 + eps) - p`, the new eps shifts every value (or every value below it): safe when it is at most 1e-6 "
        "(float32 and wider: below float32 noise on normal inputs), unsafe otherwise (1e-3 in float16 visibly moves "
        "a probability of 0.01), so it is applied only with --unsafe-fixes. Except: an eps added to a tensor "
        "inside a framework call in float16/bfloat16 (`jnp.log(p + 1e-8)`) gets a safe fix that computes that term "
        "in float32 (`jnp.log(p.astype(jnp.float32) + 1e-8)`): the eps then exists, the value equals the original "
        "to float16 precision wherever p > 0, and the gradient still flows where p is tiny (a larger eps would shift "
        "every value, a clamp would stop the gradient below it)."
    )

    def __init__(self, context) -> None:  # type: ignore[no-untyped-def]
        super().__init__(context)
        self._parents: dict[int, cst.CSTNode] | None = None

    # ---- helpers -----------------------------------------------------------------------------------------------
    @property
    def _dt(self):  # type: ignore[no-untyped-def]
        return dtypes_of(self.context.index)

    def _const(self, expr: cst.BaseExpression | None) -> float | None:
        if expr is None:
            return None
        return constant_value(self.context.index, expr, self.stmt)

    def _parent(self, node: cst.CSTNode) -> cst.CSTNode | None:
        if self._parents is None:
            parents: dict[int, cst.CSTNode] = {}
            stack: list[cst.CSTNode] = []

            def enter(n: cst.CSTNode) -> None:
                if stack:
                    parents[id(n)] = stack[-1]
                stack.append(n)

            walk(self.context.module, enter, lambda n: stack.pop())
            self._parents = parents
        return self._parents.get(id(node))

    def _dtype(self, partner: cst.BaseExpression) -> DtypeFact:
        """The dtype an operation between a Python constant and `partner` computes in."""
        dt = self._dt
        stmt = self.stmt
        explicit = dt.tensor_dtype(partner, stmt)
        if explicit is not None:
            return explicit
        prediction = bool(self.value(partner).origins & _PREDICTION)
        autocast = dt.autocast_at(stmt)
        if autocast is not None and prediction:
            return autocast
        if dt.global_dtype is not None:
            return dt.global_dtype
        if dt.mixed is not None and prediction and not dt.float32_output:
            scope = self.context.scope
            if not (dt.mixed_keras3 and scope is not None and scope.kind in _KERAS3_CAST_SCOPES):
                return dt.mixed
        return DEFAULT

    @staticmethod
    def _in(fact: DtypeFact) -> str:
        return f"in {fact.dtype}" if fact is DEFAULT else f"in {fact.dtype} ({fact.reason})"

    def _zero_use(self, node: cst.CSTNode) -> str:
        """What a sum that can still be 0 does next: words for the message."""
        parent = self._parent(node)
        if isinstance(parent, cst.BinaryOperation) and isinstance(parent.operator, cst.Divide) and parent.right is node:
            return "the division is inf/NaN there"
        if isinstance(parent, cst.Arg):
            call = self._parent(parent)
            op = self.op_of(call) if isinstance(call, cst.Call) else None
            if op is not None and op.name in ("log", "log2", "log10"):
                return f"{op.name}(0) = -inf there"
            if op is not None and op.name in ("sqrt", "rsqrt"):
                return "the gradient of sqrt is infinite there"
            if op is not None and op.name in ("divide", "reciprocal"):
                return "the division is inf/NaN there"
        return "the eps guards nothing"

    def _fold(self, expr: cst.BaseExpression) -> tuple[float, float, cst.BaseExpression] | None:
        """`1 - eps` (inline, or a name bound to it): (base, signed eps, the expression shown)."""
        shown = expr
        if isinstance(expr, cst.Name):
            stmt = self.stmt
            if stmt is None:
                return None
            values = reaching_values(self.context.index, expr.value, stmt)
            if not values or len(values) != 1:
                return None
            expr = values[0][0]
        if not (isinstance(expr, cst.BinaryOperation) and isinstance(expr.operator, (cst.Add, cst.Subtract))):
            return None
        a, b = self._const(expr.left), self._const(expr.right)
        if a is None or b is None:
            return None
        if isinstance(expr.operator, cst.Subtract):
            b = -b
        base, eps = (a, b) if abs(a) >= abs(b) else (b, a)
        if eps == 0 or base == 0 or abs(eps) >= abs(base) * 0.5:
            return None
        return base, eps, shown

    # ---- clip / clamp / minimum / maximum bounds ----------------------------------------------------------------
    def visit_Call(self, node: cst.Call) -> None:
        op = self.op_of(node)
        if op is None or op.name not in ("clip", "maximum", "minimum") or op.framework == "numpy":
            return  # NumPy arrays are float64 unless the code says otherwise
        pos = [a.value for a in node.args if a.keyword is None and not a.star]
        kw = {a.keyword.value: a.value for a in node.args if a.keyword is not None}
        if op.is_method and isinstance(node.func, cst.Attribute):
            x, rest = node.func.value, pos
        else:
            x, rest = (pos[0] if pos else kw.get("x") or kw.get("input") or kw.get("t")), pos[1:]
        if x is None or self._const(x) is not None:
            return
        bounds: list[tuple[cst.BaseExpression, bool]] = []  # (bound, is the lower bound)
        if op.name == "clip":
            lo = rest[0] if rest else next((kw[k] for k in ("clip_value_min", "min_value", "min", "a_min", "x_min",
                                                            "lower") if k in kw), None)
            hi = rest[1] if len(rest) > 1 else next((kw[k] for k in ("clip_value_max", "max_value", "max", "a_max",
                                                                     "x_max", "upper") if k in kw), None)
            bounds = [(b, is_lo) for b, is_lo in ((lo, True), (hi, False)) if b is not None]
        else:
            other = rest[0] if rest else kw.get("y") or kw.get("other") or kw.get("min") or kw.get("max")
            if other is not None:
                bounds = [(other, op.name == "maximum")]
        for bound, lower in bounds:
            self._check_bound(node, x, bound, lower)

    def _check_bound(self, call: cst.Call, x: cst.BaseExpression, bound: cst.BaseExpression, lower: bool) -> None:
        fold = self._fold(bound)
        if fold is not None:
            base, eps, shown = fold
            fact = self._dtype(x)
            use = self._bound_matters(call) if vanishes(base, eps, fact.dtype) else None
            if use is None:
                return
            side = "below" if base > 0 else "above"
            xs = self.source_of(x, 30)
            near = abs(base)
            shown_src = self.source_of(shown)
            value = ""
            if isinstance(bound, cst.Name) or not _all_literal(shown):
                value = f" (= {_num(base)} {'-' if eps < 0 else '+'} {_num(abs(eps))})"
            if use == "trig":
                consequence = f"the acos/asin/atanh it feeds has an infinite (NaN) gradient at {xs} = {_val(base)}"
            elif base > 0:
                consequence = f"`{_num(near)} - {xs}` can still be exactly 0 and log({_num(near)} - {xs}) is -inf " \
                              f"at {xs} = {_val(base)}"
            else:
                consequence = f"`{_num(near)} + {xs}` can still be exactly 0 at {xs} = {_val(base)}"
            new_eps = smallest_safe_eps(fact.dtype, near)
            self.report(bound, (
                f"`{shown_src}`{value} rounds to {_val(base)} {self._in(fact)}: the clip does not keep `{xs}` "
                f"{side} {_val(base)}, so {consequence}; use an eps of at least "
                f"{_num(new_eps)} in {fact.dtype}"), self._fix(bound, new_eps, "safe"))
            return
        if not lower:
            return
        eps = self._const(bound)
        if eps is None or eps <= 0:
            return
        fact = self._dtype(x)
        if underflows(eps, fact.dtype):
            self._report_zero(bound, eps, fact, f"the clip's lower bound is 0, so `{self.source_of(x, 30)}` can "
                                                "still be exactly 0 (log(0) = -inf, x / 0 = inf)")

    def _report_zero(self, node: cst.CSTNode, eps: float, fact: DtypeFact, consequence: str,
                     cast_fix: FixSpec | None = None) -> None:
        shown = self.source_of(node)
        try:
            literal = float(shown) == eps
        except ValueError:
            literal = False
        value = "" if literal else f" (= {_num(eps)})"
        new_eps = smallest_safe_eps(fact.dtype)
        fix = cast_fix
        if fix is None and isinstance(node, (cst.Float, cst.Integer)):
            fix = self._fix(node, new_eps, "unsafe" if new_eps > _MEASURABLE else "safe")
        self.report(node, f"`{shown}`{value} is exactly 0 {self._in(fact)}: {consequence}; use an eps of at least "
                          f"{_num(new_eps)} or compute the loss in float32", fix)

    def _fix(self, node: cst.CSTNode, new_eps: float, applicability: str) -> FixSpec | None:
        """Replace the eps literal of `node` (the literal itself, or `base +- literal`) by `new_eps`."""
        lit: cst.CSTNode | None = None
        if isinstance(node, (cst.Float, cst.Integer)):
            lit = node
        elif isinstance(node, cst.BinaryOperation) and isinstance(node.operator, (cst.Add, cst.Subtract)):
            a, b = self._const(node.left), self._const(node.right)
            if a is not None and b is not None:
                lit = node.right if abs(b) <= abs(a) else node.left
        if not isinstance(lit, (cst.Float, cst.Integer)):
            return None  # a name, a parameter, K.epsilon(): it may be used elsewhere
        return FixSpec(f"raise the eps to {_eps_literal(new_eps)}", applicability,
                       (Replacement(lit, _eps_literal(new_eps)),))

    def _bound_matters(self, call: cst.Call) -> str | None:
        """Where the clipped value is used so that the bound matters: "gap" (`1 - x`, `1 + x`, `1 - x**2`,
        log1p(-x)), "trig" (acos/asin/atanh), or None."""
        parent = self._parent(call)
        while isinstance(parent, (cst.Arg,)):
            parent = self._parent(parent)
        targets: list[cst.CSTNode] = [call]
        if isinstance(parent, cst.AssignTarget) or isinstance(parent, (cst.Assign, cst.AnnAssign)):
            assign = parent if isinstance(parent, (cst.Assign, cst.AnnAssign)) else self._parent(parent)
            names = []
            if isinstance(assign, cst.Assign):
                names = [t.target.value for t in assign.targets if isinstance(t.target, cst.Name)]
            elif isinstance(assign, cst.AnnAssign) and isinstance(assign.target, cst.Name):
                names = [assign.target.value]
            if not names:
                return None  # stored somewhere we do not follow
            scope_node = self.stmt.func.node if self.stmt is not None and self.stmt.func is not None \
                else self.context.module
            found: list[cst.CSTNode] = []

            def enter(n: cst.CSTNode) -> None:
                if isinstance(n, cst.Name) and n.value in names:
                    found.append(n)

            walk(scope_node, enter)
            targets = [n for n in found if not self._is_store(n)]
        uses = {self._sensitive_use(t) for t in targets} - {None}
        return "trig" if "trig" in uses else ("gap" if uses else None)

    def _is_store(self, name: cst.Name) -> bool:
        p = self._parent(name)
        return isinstance(p, (cst.AssignTarget, cst.Param)) or (isinstance(p, cst.AugAssign) and p.target is name)

    def _sensitive_use(self, node: cst.CSTNode) -> str | None:
        for _ in range(3):  # through `x ** 2`, `square(x)`, parentheses and arguments
            parent = self._parent(node)
            if isinstance(parent, cst.Arg):
                call = self._parent(parent)
                if not isinstance(call, cst.Call):
                    return None
                leaf = (dotted_name(call.func) or "").rsplit(".", 1)[-1]
                if leaf in _INVERSE_TRIG:
                    return "trig"
                op = self.op_of(call)
                if op is not None and op.name == "subtract":
                    args = [a.value for a in call.args]
                    return "gap" if len(args) > 1 and args[1] is node and self._const(args[0]) is not None else None
                if op is not None and op.name in ("square", "pow"):
                    node = call
                    continue
                return None
            if isinstance(parent, cst.Attribute) and parent.value is node:
                call = self._parent(parent)
                if parent.attr.value in _INVERSE_TRIG:
                    return "trig"
                if parent.attr.value in ("square", "pow") and isinstance(call, cst.Call):
                    node = call
                    continue
                return None
            if isinstance(parent, cst.UnaryOperation) and isinstance(parent.operator, cst.Minus):
                grand = self._parent(parent)
                if isinstance(grand, cst.Arg):
                    call = self._parent(grand)
                    op = self.op_of(call) if isinstance(call, cst.Call) else None
                    return "gap" if op is not None and op.name == "log1p" else None
                node = parent
                continue
            if isinstance(parent, cst.BinaryOperation):
                if isinstance(parent.operator, cst.Power):
                    node = parent
                    continue
                if isinstance(parent.operator, (cst.Add, cst.Subtract)):
                    other = parent.left if parent.right is node else parent.right
                    c = self._const(other)
                    return "gap" if c is not None and c != 0 else None
                return None
            return None
        return None

    # ---- eps added to a tensor, (1 + eps) - p -----------------------------------------------------------------
    def visit_BinaryOperation(self, node: cst.BinaryOperation) -> None:
        if not isinstance(node.operator, (cst.Add, cst.Subtract)):
            return
        left_c, right_c = self._const(node.left), self._const(node.right)
        if (left_c is None) == (right_c is None):
            return
        const_side, tensor = (node.left, node.right) if left_c is not None else (node.right, node.left)
        fold = self._fold(const_side) if not isinstance(const_side, cst.Name) else None
        if fold is not None and isinstance(node.operator, cst.Subtract) and const_side is node.left:
            # `1 + eps - p` is `(1 + eps) - p`: the folded constant is converted before p is subtracted
            base, eps, shown = fold
            fact = self._dtype(tensor)
            if vanishes(base, eps, fact.dtype) and self._under_singular(node):
                ts = self.source_of(tensor, 30)
                new_eps = smallest_safe_eps(fact.dtype, abs(base))
                self.report(const_side, (
                    f"`{self.source_of(shown)}` rounds to {_val(base)} {self._in(fact)}, so "
                    f"`{self.source_of(node)}` is still exactly 0 at {ts} = {_num(base)}: the eps guards nothing; "
                    f"write `{_num(base)} - {ts} + eps` or use an eps of at least "
                    f"{_num(new_eps)}"), self._fix(const_side, new_eps, "unsafe" if new_eps > _MEASURABLE else "safe"))
            return
        if not isinstance(node.operator, cst.Add):
            return
        eps = left_c if left_c is not None else right_c
        if eps is None or eps <= 0 or eps >= 1e-2:
            return
        fact = self._dtype(tensor)
        if underflows(eps, fact.dtype):
            ts = self.source_of(tensor, 30)
            self._report_zero(const_side, eps, fact, f"`{self.source_of(node, 40)}` adds nothing, so it is still "
                                                     f"exactly 0 where `{ts}` is, and {self._zero_use(node)}",
                              self._cast_fix(tensor, eps) if smallest_safe_eps(fact.dtype) > _MEASURABLE else None)

    def _cast_fix(self, tensor: cst.BaseExpression, eps: float) -> FixSpec | None:
        """`log(p + 1e-8)` in float16 -> `log(float32(p) + 1e-8)`: the eps then exists, the value is the same where
        p > 0 (to float16 precision) and the gradient keeps flowing where p is tiny (a larger eps would shift every
        value; a clamp would stop the gradient below it)."""
        cast = _float32(self.context.index, tensor, self._enclosing_op_call(tensor))
        if cast is None:
            return None
        return FixSpec("compute this term in float32, where the eps is not 0", "safe", (Replacement(tensor, cast),))

    def _enclosing_op_call(self, node: cst.CSTNode) -> tuple[cst.Call, object] | None:
        """The framework call whose argument holds `node` (`jnp.log(p + eps)` for `p`), with its op."""
        cur: cst.CSTNode | None = node
        for _ in range(4):
            cur = self._parent(cur) if cur is not None else None
            if isinstance(cur, cst.Call):
                op = self.op_of(cur)
                return (cur, op) if op is not None else None
        return None

    def _under_singular(self, node: cst.CSTNode) -> bool:
        parent = self._parent(node)
        if isinstance(parent, cst.BinaryOperation) and isinstance(parent.operator, cst.Divide) \
                and parent.right is node:
            return True
        if isinstance(parent, cst.Arg):
            call = self._parent(parent)
            op = self.op_of(call) if isinstance(call, cst.Call) else None
            return op is not None and op.name in _SINGULAR_OPS
        return False

    VALID = [
        Valid("""
            import tensorflow as tf

            def custom_loss(y_true, y_pred):
                epsilon = 1e-8
                return tf.reduce_mean(tf.abs(y_true - y_pred) / (tf.abs(y_true) + epsilon))
        """, "1e-8 added to a denominator in float32: representable, and not next to 1 (seed s000_ex2)"),
        Valid("""
            import tensorflow as tf

            def bce(y_true, y_pred):
                y_pred = tf.clip_by_value(y_pred, 1e-7, 1 - 1e-7)
                return -tf.reduce_mean(y_true * tf.math.log(y_pred) + (1 - y_true) * tf.math.log(1 - y_pred))
        """, "1 - 1e-7 is below 1 in float32"),
        Valid("""
            from keras import backend as K

            def bce(y_true, y_pred):
                y_pred = K.clip(y_pred, K.epsilon(), 1 - K.epsilon())
                return -K.mean(y_true * K.log(y_pred) + (1 - y_true) * K.log(1 - y_pred))
        """, "K.epsilon() in float32"),
        Valid("""
            import torch

            torch.set_default_dtype(torch.float64)

            def bce_loss(pred, target):
                pred = pred.clamp(1e-10, 1 - 1e-10)
                return -(target * pred.log() + (1 - target) * (1 - pred).log()).mean()
        """, "float64 code: 1 - 1e-10 is below 1"),
        Valid("""
            import torch

            def bce_loss(pred, target, eps=1e-8):
                pred = pred.double().clamp(eps, 1 - eps)
                return -(target * pred.log() + (1 - target) * (1 - pred).log()).mean()
        """, "an explicit cast to float64 before the clip"),
        Valid("""
            import tensorflow as tf

            def categorical_ce(y_true, y_pred):
                y_pred = tf.clip_by_value(y_pred, 1e-8, 1.0 - 1e-8)
                return -tf.reduce_sum(y_true * tf.math.log(y_pred), axis=-1)
        """, "only log(p) follows: the upper bound does not matter"),
        Valid("""
            import jax.numpy as jnp

            def nll(log_probs, labels):
                return -jnp.mean(jnp.log(jnp.sum(jnp.exp(log_probs) * labels, axis=-1) + 1e-10))
        """, "1e-10 added to a value that can be 0, in float32: log(1e-10) is finite"),
        Valid("""
            import tensorflow as tf

            tf.keras.mixed_precision.set_global_policy("mixed_float16")

            def build():
                inputs = tf.keras.Input((10,))
                x = tf.keras.layers.Dense(10)(inputs)
                outputs = tf.keras.layers.Activation("sigmoid", dtype="float32")(x)
                return tf.keras.Model(inputs, outputs)

            def bce(y_true, y_pred):
                y_pred = tf.clip_by_value(y_pred, 1e-7, 1 - 1e-7)
                return -tf.reduce_mean(y_true * tf.math.log(y_pred) + (1 - y_true) * tf.math.log(1 - y_pred))
        """, "mixed_float16 with a float32 output layer (the mixed-precision guide): the loss sees float32"),
        Valid("""
            import torch

            def train_step(model, x, y, opt):
                with torch.autocast("cuda", dtype=torch.float16):
                    logits = model(x)
                    loss = torch.log(torch.sigmoid(logits).sum(dim=1) + 1e-8).mean()
                loss.backward()
        """, "autocast runs sum in float32: the 1e-8 survives"),
        Valid("""
            import torch

            def cos_loss(a, b):
                cos = torch.nn.functional.cosine_similarity(a, b, dim=-1)
                return torch.acos(torch.clamp(cos, -1 + 1e-7, 1 - 1e-7)).mean()
        """, "acos domain clamp with an eps float32 keeps"),
        Valid("""
            import keras

            keras.mixed_precision.set_global_policy("mixed_float16")

            class BCE(keras.losses.Loss):
                def call(self, y_true, y_pred):
                    y_pred = keras.ops.clip(y_pred, 1e-7, 1 - 1e-7)
                    return -keras.ops.mean(y_true * keras.ops.log(y_pred) + (1 - y_true) * keras.ops.log(1 - y_pred))
        """, "Keras 3 casts a Loss's inputs to float32 (floatx) under a mixed policy"),
    ]
    INVALID = [
        Invalid("""
            import tensorflow as tf

            def bce(y_true, y_pred):
                y_pred = tf.clip_by_value(y_pred, 1e-8, 1 - 1e-8)
                return -tf.reduce_mean(y_true * tf.math.log(y_pred) + (1 - y_true) * tf.math.log(1 - y_pred))
        """, "LL108", 4, "TF2: 1 - 1e-8 is 1.0 in float32 (NVIDIA/apex#358)", fixed="""
            import tensorflow as tf

            def bce(y_true, y_pred):
                y_pred = tf.clip_by_value(y_pred, 1e-8, 1 - 1e-7)
                return -tf.reduce_mean(y_true * tf.math.log(y_pred) + (1 - y_true) * tf.math.log(1 - y_pred))
        """),
        Invalid("""
            from keras import backend as K

            K.set_floatx("float16")

            def bce(y_true, y_pred):
                y_pred = K.clip(y_pred, K.epsilon(), 1 - K.epsilon())
                return -K.mean(y_true * K.log(y_pred) + (1 - y_true) * K.log(1 - y_pred))
        """, "LL108", 6, "Keras 2: K.epsilon() under set_floatx('float16') (keras-team/keras#11832)"),
        Invalid("""
            import torch

            EPS = 1e-10

            class BCELoss(torch.nn.Module):
                def forward(self, pred, target):
                    pred = torch.clamp(pred, EPS, 1 - EPS)
                    return -(target * torch.log(pred) + (1 - target) * torch.log(1 - pred)).mean()
        """, "LL108", 7, "PyTorch: a module constant EPS = 1e-10"),
        Invalid("""
            import torch

            def angular_loss(a, b, eps=1e-8):
                cos = torch.nn.functional.cosine_similarity(a, b, dim=-1)
                return torch.acos(cos.clamp(-1 + eps, 1 - eps)).mean()
        """, "LL108", 5, "acos domain clamp: acos has an infinite gradient at +-1"),
        Invalid("""
            import tensorflow as tf

            tf.keras.mixed_precision.set_global_policy("mixed_float16")

            def dice_loss(y_true, y_pred):
                inter = tf.reduce_sum(y_true * y_pred)
                return 1 - 2 * inter / (tf.reduce_sum(y_pred) + 1e-8)
        """, "LL108", 7, "mixed_float16: 1e-8 is 0 in float16, the denominator can be 0", fixed="""
            import tensorflow as tf

            tf.keras.mixed_precision.set_global_policy("mixed_float16")

            def dice_loss(y_true, y_pred):
                inter = tf.reduce_sum(y_true * y_pred)
                return 1 - 2 * inter / (tf.reduce_sum(y_pred) + 1e-3)
        """),
        Invalid("""
            import torch

            def train_step(model, x, y, opt):
                with torch.autocast("cuda", dtype=torch.float16):
                    probs = torch.sigmoid(model(x))
                    probs = torch.clamp(probs, 1e-8, 1.0)
                    loss = -(y * torch.log(probs)).mean()
                loss.backward()
        """, "LL108", 6, "autocast: the clamp runs in float16, where 1e-8 is 0", fixed="""
            import torch

            def train_step(model, x, y, opt):
                with torch.autocast("cuda", dtype=torch.float16):
                    probs = torch.sigmoid(model(x))
                    probs = torch.clamp(probs, 1e-3, 1.0)
                    loss = -(y * torch.log(probs)).mean()
                loss.backward()
        """),
        Invalid("""
            import jax.numpy as jnp

            def loss_fn(y_true, y_pred):
                p = y_pred.astype(jnp.float16)
                return -jnp.mean(y_true * jnp.log(p + 1e-8))
        """, "LL108", 5, "JAX: an explicit cast to float16", fixed="""
            import jax.numpy as jnp

            def loss_fn(y_true, y_pred):
                p = y_pred.astype(jnp.float16)
                return -jnp.mean(y_true * jnp.log(p.astype(jnp.float32) + 1e-8))
        """),
        Invalid("""
            import tensorflow as tf

            def bce(y_true, y_pred):
                return -tf.reduce_mean(y_true * tf.math.log(y_pred + 1e-7)
                                       + (1 - y_true) * tf.math.log(1 + 1e-8 - y_pred))
        """, "LL108", 5, "(1 + 1e-8) - p is folded first: still 0 at p = 1", fixed="""
            import tensorflow as tf

            def bce(y_true, y_pred):
                return -tf.reduce_mean(y_true * tf.math.log(y_pred + 1e-7)
                                       + (1 - y_true) * tf.math.log(1 + 1e-7 - y_pred))
        """),
    ]

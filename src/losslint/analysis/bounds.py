"""Upper bounds for arguments of `exp`, max-shift recognition, amplification, log-sum-exp / softmax shapes, and the
`where` masks whose unselected branch poisons the gradient.

`facts.py` answers "can this be 0 / negative?" under the loss's input contract (y_pred and y_true in [0, 1]). That
contract is wrong for overflow questions: a regression prediction is unbounded, so here y_pred, y_true and logits are
unbounded and only what the code itself guarantees bounds a value: a literal, an activation (sigmoid, softmax, tanh,
log_softmax), abs/square signs, clip/minimum/maximum, a max subtracted from its own operand (`x - max(x)` <= 0,
`x - logsumexp(x)` <= 0), or a negation of any of these.

Shared by LL104 (exp overflow), LL106 (log1p / expm1) and LL107 (where-masked NaN gradients).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import libcst as cst

from losslint.analysis.calls import later_arg, positional
from losslint.analysis.facts import (ANY, INF, Facts, Value, _add, _called_name, _first_operand, _literal,
                                     _mul, _neg, _pow, _unary, assigned_value, const, hull)
from losslint.analysis.index import StmtInfo

# Origins whose range is only a convention of the loss signature: they bound nothing for overflow.
CONTRACT = frozenset({"y_pred", "y_true", "logits"})
# Origins that make an amplified exponent a real hazard: data that the model or the labels can push far.
DATA = frozenset({"y_pred", "y_true", "logits", "difference"})
# Below this amplification factor a scaled exponent is ordinary (`exp(2 * log_std)` is a variance).
AMPLIFY_FACTOR = 5.0
FLOAT32_EXP_MAX = 88.72
_MAX_NAMES = frozenset({"max", "amax", "reduce_max", "nanmax"})
_LSE_NAMES = frozenset({"logsumexp", "reduce_logsumexp"})
_PASS_NAMES = frozenset({"stop_gradient", "detach", "unsqueeze", "squeeze", "reshape", "view", "expand_dims",
                         "float", "double", "to", "type_as", "clone", "contiguous"})
_DEPTH = 12


@dataclass(frozen=True)
class Amplified:
    term: cst.BaseExpression  # the amplified sub-expression
    kind: str  # "square" | "power" | "scaled"
    factor: float  # the exponent (square / power) or the scale (scaled)
    base: cst.BaseExpression  # what is squared / raised / scaled

    def limit(self) -> float:
        """The |base| (square, power) or base (scaled) above which float32 exp overflows."""
        if self.kind == "scaled":
            return FLOAT32_EXP_MAX / self.factor
        return FLOAT32_EXP_MAX ** (1 / self.factor)


class Bounds:
    """Per-module helper over `Facts` (one per Facts object: see `bounds_for`)."""

    def __init__(self, facts: Facts) -> None:
        self.facts = facts
        self.index = facts.index
        self._cache: dict[tuple[int, int], Value] = {}
        self._keep: list[cst.CSTNode] = []  # clones stay alive so their ids are never reused in a cache key
        self._patterns: dict[int, set[int]] = {}
        self._stmts_by_func: dict[int, list[StmtInfo]] | None = None

    # ---- ranges ------------------------------------------------------------------------------------------------
    def range(self, node: cst.BaseExpression, stmt: StmtInfo | None, depth: int = 0) -> Value:
        """The interval `node` provably lies in, trusting no loss-signature contract."""
        if stmt is None or depth > _DEPTH:
            return ANY
        key = (id(node), stmt.index)
        if key in self._cache:
            return self._cache[key]
        self._cache[key] = ANY  # recursion guard
        v = self._range(node, stmt, depth + 1)
        self._cache[key] = v
        return v

    def bounded_above(self, node: cst.BaseExpression, stmt: StmtInfo | None) -> bool:
        return math.isfinite(self.range(node, stmt).hi)

    def _trusted(self, node: cst.BaseExpression, stmt: StmtInfo) -> Value:
        """The facts value with the signature contract taken out."""
        v = self.facts.value(node, stmt)
        if v.origins & CONTRACT and v.guard not in ("clip", "maximum"):
            return replace(ANY, origins=v.origins)
        return v

    def _range(self, node: cst.BaseExpression, stmt: StmtInfo, depth: int) -> Value:
        rng = lambda n: self.range(n, stmt, depth)  # noqa: E731
        if isinstance(node, (cst.Integer, cst.Float)):
            return const(float(node.evaluated_value))
        if isinstance(node, cst.UnaryOperation):
            return _unary(node.operator, rng(node.expression))
        if isinstance(node, cst.Name):
            assigned = assigned_value(self.facts, node.value, stmt)
            if assigned is not None:
                return self.range(*assigned, depth)
            return self._trusted(node, stmt)
        if isinstance(node, cst.BinaryOperation):
            a, b = rng(node.left), rng(node.right)
            op = node.operator
            if isinstance(op, cst.Add):
                return _add(a, b)
            if isinstance(op, cst.Subtract):
                if self.dominates(node.right, node.left, stmt):
                    return Value(-INF, 0.0, origins=a.origins | {"max-shifted"})
                return _add(a, _neg(b))
            if isinstance(op, cst.Multiply):
                if node.left.deep_equals(node.right):
                    return Value(0.0, INF, origins=a.origins | {"square"})
                return _mul(a, b)
            if isinstance(op, cst.Divide):
                if b.is_constant and b.lo != 0:
                    return _mul(a, const(1.0 / b.lo))
                if not b.origins and math.isinf(b.lo) and math.isinf(b.hi):
                    b = Value(0.0, INF, True)  # a divisor we know nothing about is a positive hyper-parameter
                if b.nonneg and a.hi <= 0:
                    return Value(-INF, 0.0, origins=a.origins)  # exp(-x**2 / (2 * sigma**2)) <= 1
                if b.nonneg and a.lo >= 0:
                    return Value(0.0, INF, origins=a.origins)
                return Value(origins=a.origins | b.origins)
            if isinstance(op, cst.Power):
                return _pow(a, b)
            return ANY
        if isinstance(node, cst.Call):
            return self._call(node, stmt, depth)
        if isinstance(node, cst.IfExp):
            return hull([rng(node.body), rng(node.orelse)])
        return self._trusted(node, stmt)

    def _call(self, node: cst.Call, stmt: StmtInfo, depth: int) -> Value:
        rng = lambda n: self.range(n, stmt, depth)  # noqa: E731
        op = self.index.op_of(node)
        if op is None:
            name = _called_name(node)
            first = _first_operand(node, None) if not isinstance(node.func, cst.Attribute) else node.func.value
            if name in _PASS_NAMES and first is not None:
                return rng(first)
            if name in ("tanh", "cosine_similarity", "cos", "sin"):
                return Value(-1.0, 1.0)
            if name in ("relu",) and first is not None:
                x = rng(first)
                return Value(0.0, max(x.hi, 0.0), origins=x.origins)
            return self._trusted(node, stmt)
        name = op.name
        x_node = _first_operand(node, op)
        x = rng(x_node) if x_node is not None else ANY
        args = positional(node)
        rest = args if op.is_method else args[1:]
        if name == "exp":
            hi = math.exp(x.hi) if x.hi < 700 else INF
            return Value(0.0, hi, True, False, x.origins | {"exp"})
        if name in ("sigmoid", "softmax"):
            return Value(0.0, 1.0, origins=frozenset({name}))
        if name in ("log_softmax", "log_sigmoid"):
            return Value(-INF, 0.0, origins=frozenset({name}))
        if name == "softplus":
            return Value(0.0, INF, True, False, x.origins)
        if name == "square":
            return Value(0.0, max(x.lo * x.lo, x.hi * x.hi), origins=x.origins | {"square"})
        if name == "abs":
            return Value(0.0, max(abs(x.lo), abs(x.hi)), origins=x.origins)
        if name == "sqrt":
            return Value(0.0, math.sqrt(x.hi) if x.hi >= 0 else INF, origins=x.origins)
        if name == "pow":
            e = rest[0] if rest else None
            return _pow(x, rng(e)) if e is not None else ANY
        if name == "negative":
            return _neg(x)
        if name in ("identity", "cast", "mean", "max", "min"):
            if name == "max" and len(rest) == 1 and not isinstance(rest[0], (cst.Integer,)):
                return hull([x, rng(rest[0])])  # torch.max(a, b): elementwise
            return x
        if name == "sum":
            if x.hi <= 0:
                return Value(-INF, 0.0, origins=x.origins)
            return Value(0.0 if x.lo >= 0 else -INF, INF, origins=x.origins)
        if name == "minimum":
            y = rng(rest[0]) if rest else ANY
            return Value(min(x.lo, y.lo), min(x.hi, y.hi), origins=x.origins)
        if name == "maximum":
            y = rng(rest[0]) if rest else ANY
            return Value(max(x.lo, y.lo), max(x.hi, y.hi), origins=x.origins)
        if name == "clip":
            lo_v = self._kw_or_pos(node, rest, 0, ("clip_value_min", "min_value", "min", "a_min", "x_min"), stmt, depth)
            hi_v = self._kw_or_pos(node, rest, 1, ("clip_value_max", "max_value", "max", "a_max", "x_max"), stmt, depth)
            lo = max(x.lo, lo_v.lo) if lo_v is not None else x.lo
            hi = min(x.hi, hi_v.hi) if hi_v is not None else x.hi
            return Value(lo, hi, origins=x.origins, guard="clip")
        if name == "where" and len(args) >= 3:
            return hull([rng(args[1]), rng(args[2])])
        if name == "logsumexp":
            return Value(origins=x.origins)
        return self._trusted(node, stmt)

    def _kw_or_pos(self, node: cst.Call, rest: list[cst.BaseExpression], i: int, kws: tuple[str, ...],
                   stmt: StmtInfo, depth: int) -> Value | None:
        found = later_arg(node, rest, i, kws)
        return self.range(found, stmt, depth) if found is not None else None

    # ---- max shifting ------------------------------------------------------------------------------------------
    def _strip(self, expr: cst.BaseExpression, stmt: StmtInfo, follow: bool = True) -> cst.BaseExpression:
        """Through reshapes, stop_gradient/detach, `[0]` / `.values` of a torch max, and one assignment."""
        for _ in range(8):
            if isinstance(expr, cst.Subscript) and len(expr.slice) == 1 and isinstance(expr.slice[0].slice, cst.Index) \
                    and _literal(expr.slice[0].slice.value) == 0.0:
                expr = expr.value  # torch's max(dim) returns (values, indices)
                continue
            if isinstance(expr, cst.Subscript) and all(_is_new_axis(e.slice) for e in expr.slice):
                expr = expr.value  # m[:, None]: the same values with a new axis
                continue
            if isinstance(expr, cst.Attribute) and expr.attr.value == "values":
                expr = expr.value
                continue
            if isinstance(expr, cst.Call):
                op = self.index.op_of(expr)
                name = _called_name(expr)
                if (op is not None and op.name in ("identity", "cast")) or (op is None and name in _PASS_NAMES):
                    inner = _first_operand(expr, op) if op is not None else (
                        expr.func.value if isinstance(expr.func, cst.Attribute) and not positional(expr)
                        and name in ("detach", "float", "double", "contiguous", "clone") else _first_operand(expr, None))
                    if inner is not None:
                        expr = inner
                        continue
            if follow and isinstance(expr, cst.Name):
                assigned = assigned_value(self.facts, expr.value, stmt)
                if assigned is not None:
                    expr, stmt = assigned
                    follow = True
                    continue
            return expr
        return expr

    def _same(self, a: cst.BaseExpression, b: cst.BaseExpression, stmt: StmtInfo) -> bool:
        if self._strip(a, stmt, False).deep_equals(self._strip(b, stmt, False)):
            return True
        return self._strip(a, stmt).deep_equals(self._strip(b, stmt))

    def dominates(self, m: cst.BaseExpression, x: cst.BaseExpression, stmt: StmtInfo, depth: int = 0) -> bool:
        """Is `m` >= `x` elementwise by construction: a max (or logsumexp) over `x`, or an elementwise maximum with
        such a max? Then `x - m` <= 0 and `exp(x - m)` <= 1: the max-shifted, overflow-free form."""
        if depth > 4:
            return False
        m = self._strip(m, stmt)
        if not isinstance(m, cst.Call):
            return False
        op = self.index.op_of(m)
        name = op.name if op is not None else _called_name(m)
        is_max = name in _MAX_NAMES or (op is not None and op.name in ("max", "maximum"))
        is_lse = name in _LSE_NAMES or (op is not None and op.name == "logsumexp")
        if not (is_max or is_lse):
            return False
        operands: list[cst.BaseExpression] = []
        if isinstance(m.func, cst.Attribute) and (op is None or op.is_method) and self.index.op_of(m) is None \
                or (op is not None and op.is_method):
            operands.append(m.func.value)
        operands.extend(a.value for a in m.args if a.keyword is None and not a.star
                        and not isinstance(a.value, (cst.Integer, cst.UnaryOperation, cst.Tuple)))
        for o in operands:
            if self._same(o, x, stmt) or self.dominates(o, x, stmt, depth + 1):
                return True
        return False

    # ---- amplification -----------------------------------------------------------------------------------------
    def amplified(self, arg: cst.BaseExpression, stmt: StmtInfo, depth: int = 0) -> Amplified | None:
        """A term of an exp argument that grows faster than its data: square / power > 1 of an unbounded data value,
        or a large literal scale of one. None when the argument is bounded above (exp(-d**2), max-shifted)."""
        if depth > 4 or self.bounded_above(arg, stmt):
            return None
        node = arg
        if isinstance(node, cst.Name):
            assigned = assigned_value(self.facts, node.value, stmt)
            if assigned is not None:
                return self.amplified(*assigned, depth + 1)
            return None
        if isinstance(node, cst.BinaryOperation):
            op = node.operator
            if isinstance(op, cst.Add):
                return self.amplified(node.left, stmt, depth + 1) or self.amplified(node.right, stmt, depth + 1)
            if isinstance(op, cst.Subtract):
                return self.amplified(node.left, stmt, depth + 1)
            if isinstance(op, cst.Multiply):
                if node.left.deep_equals(node.right):
                    return self._power_term(node, node.left, 2.0, stmt)
                for k, u in ((node.left, node.right), (node.right, node.left)):
                    kv = self.facts.value(k, stmt)
                    if kv.is_constant and kv.lo >= AMPLIFY_FACTOR and self._data_unbounded_above(u, stmt):
                        return Amplified(node, "scaled", kv.lo, u)
                    if kv.is_constant and kv.lo > 0:
                        inner = self.amplified(u, stmt, depth + 1)
                        if inner is not None:
                            return inner
                return None
            if isinstance(op, cst.Divide):
                kv = self.facts.value(node.right, stmt)
                if kv.is_constant and 0 < kv.lo <= 1.0 / AMPLIFY_FACTOR and self._data_unbounded_above(node.left, stmt):
                    return Amplified(node, "scaled", 1.0 / kv.lo, node.left)
                if kv.is_constant and kv.lo > 0:
                    return self.amplified(node.left, stmt, depth + 1)
                return None
            if isinstance(op, cst.Power):
                e = _literal(node.right)
                if e is not None and e > 1:
                    return self._power_term(node, node.left, e, stmt)
            return None
        if isinstance(node, cst.Call):
            op = self.index.op_of(node)
            if op is None:
                return None
            x = _first_operand(node, op)
            if x is None:
                return None
            if op.name == "square":
                return self._power_term(node, x, 2.0, stmt)
            if op.name == "pow":
                rest = positional(node) if op.is_method else positional(node)[1:]
                e = _literal(rest[0]) if rest else None
                if e is not None and e > 1:
                    return self._power_term(node, x, e, stmt)
            if op.name in ("identity", "cast", "mean", "sum"):
                return self.amplified(x, stmt, depth + 1)
        return None

    def _data(self, u: cst.BaseExpression, stmt: StmtInfo) -> bool:
        return bool(self.facts.value(u, stmt).origins & DATA)

    def _data_unbounded_above(self, u: cst.BaseExpression, stmt: StmtInfo) -> bool:
        return self._data(u, stmt) and not self.bounded_above(u, stmt)

    def _power_term(self, node: cst.BaseExpression, base: cst.BaseExpression, e: float,
                    stmt: StmtInfo) -> Amplified | None:
        r = self.range(base, stmt)
        if not self._data(base, stmt) or (math.isfinite(r.lo) and math.isfinite(r.hi)):
            return None
        return Amplified(node, "square" if e == 2 else "power", e, base)

    # ---- log-sum-exp and softmax by hand -----------------------------------------------------------------------
    def exp_call(self, expr: cst.BaseExpression, stmt: StmtInfo) -> tuple[cst.Call, cst.BaseExpression, StmtInfo] | None:
        """`exp(x)` (directly or through one assignment): the call, its argument and the statement it is in."""
        for _ in range(3):
            if isinstance(expr, cst.Call):
                op = self.index.op_of(expr)
                if op is not None and op.name == "exp":
                    x = _first_operand(expr, op)
                    return (expr, x, stmt) if x is not None else None
                if op is not None and op.name in ("identity", "cast"):
                    inner = _first_operand(expr, op)
                    if inner is None:
                        return None
                    expr = inner
                    continue
                return None
            if isinstance(expr, cst.Name):
                assigned = assigned_value(self.facts, expr.value, stmt)
                if assigned is None:
                    return None
                expr, stmt = assigned
                continue
            return None
        return None

    def sum_of_exp(self, expr: cst.BaseExpression, stmt: StmtInfo,
                   reducers: tuple[str, ...] = ("sum",)) -> list[tuple[cst.Call, cst.BaseExpression, StmtInfo]] | None:
        """`sum(exp(x))`, `exp(x).sum(dim)`, `exp(a) + sum(exp(b))`...: every exp involved, or None."""
        for _ in range(3):
            if isinstance(expr, cst.Name):
                assigned = assigned_value(self.facts, expr.value, stmt)
                if assigned is None:
                    return None
                expr, stmt = assigned
                continue
            break
        if isinstance(expr, cst.BinaryOperation) and isinstance(expr.operator, cst.Add):
            left = self.sum_of_exp(expr.left, stmt, reducers) or self._exp_list(expr.left, stmt)
            right = self.sum_of_exp(expr.right, stmt, reducers) or self._exp_list(expr.right, stmt)
            if left and right:
                return left + right
            return None
        if isinstance(expr, cst.Call):
            op = self.index.op_of(expr)
            if op is not None and op.name in reducers:
                x = _first_operand(expr, op)
                found = self.exp_call(x, stmt) if x is not None else None
                if found is not None:
                    return [found]
                if x is not None and isinstance(x, cst.BinaryOperation) and isinstance(x.operator, cst.Multiply):
                    # sum(exp(x) * mask): a masked sum of exponentials
                    for side in (x.left, x.right):
                        found = self.exp_call(side, stmt)
                        if found is not None:
                            return [found]
        return None

    def _exp_list(self, expr: cst.BaseExpression, stmt: StmtInfo) -> list[tuple[cst.Call, cst.BaseExpression, StmtInfo]]:
        found = self.exp_call(expr, stmt)
        return [found] if found is not None else []

    def unsafe_exps(self, exps: list[tuple[cst.Call, cst.BaseExpression, StmtInfo]]) -> list[cst.Call]:
        """The exps of a pattern whose argument is not bounded above (not max-shifted, not clipped...)."""
        return [call for call, x, s in exps if not self.bounded_above(x, s)]

    def log_sum_exp(self, log_call: cst.Call, stmt: StmtInfo) -> list[tuple[cst.Call, cst.BaseExpression, StmtInfo]] | None:
        """`log(sum(exp(x)))` / `log(mean(exp(x)))` (and `exp(x).sum()`): the exps involved."""
        op = self.index.op_of(log_call)
        if op is None or op.name != "log":
            return None
        arg = _first_operand(log_call, op)
        if arg is None:
            return None
        if isinstance(arg, cst.BinaryOperation) and isinstance(arg.operator, cst.Add):
            # log(sum(exp(x)) + eps): the eps guards the log against 0, not the sum against inf
            for s_, c in ((arg.left, arg.right), (arg.right, arg.left)):
                cv = self.facts.value(c, stmt)
                if not cv.origins and ((cv.is_constant and 0 < cv.lo <= 1e-3) or cv.guard == "eps"):
                    found = self.sum_of_exp(s_, stmt, ("sum", "mean"))
                    if found:
                        return found
        return self.sum_of_exp(arg, stmt, ("sum", "mean"))

    def softmax_by_hand(self, num: cst.BaseExpression | None, den: cst.BaseExpression,
                        stmt: StmtInfo) -> list[tuple[cst.Call, cst.BaseExpression, StmtInfo]] | None:
        """`exp(x) / sum(exp(x))` (also `e / e.sum(dim, keepdim=True)`, `exp(a) / (exp(a) + sum(exp(b)))`)."""
        if num is None:
            return None
        n = self.exp_call(num, stmt)
        if n is None:
            return None
        d = self.sum_of_exp(den, stmt)
        if d is None:
            return None
        return [n] + d

    def exps_in_patterns(self, stmt: StmtInfo) -> set[int]:
        """ids of the exp calls that a log-sum-exp or hand-written softmax in the same function consumes, so the
        amplified-argument check does not report the same exp twice."""
        key = id(stmt.func) if stmt.func is not None else 0
        cached = self._patterns.get(key)
        if cached is not None:
            return cached
        out: set[int] = set()
        calls = stmt.func.calls if stmt.func is not None else self.index.module_calls
        for call, s in calls:
            found = self.log_sum_exp(call, s)
            if found:
                out.update(id(c) for c, _, _ in found)
        for div, num, den, s in self._divisions(stmt):
            found = self.softmax_by_hand(num, den, s)
            if found:
                out.update(id(c) for c, _, _ in found)
        self._patterns[key] = out
        return out

    def _divisions(self, stmt: StmtInfo):  # type: ignore[no-untyped-def]
        if self._stmts_by_func is None:
            self._stmts_by_func = {}
            for info in self.index.stmt_info.values():
                if isinstance(info.node, cst.SimpleStatementLine):
                    self._stmts_by_func.setdefault(id(info.func) if info.func is not None else 0, []).append(info)
        out = []
        for info in self._stmts_by_func.get(id(stmt.func) if stmt.func is not None else 0, []):
            collector = _Divisions()
            info.node.visit(collector)
            out.extend((d, n, den, info) for d, n, den in collector.found)
        return out

    # ---- where masks -------------------------------------------------------------------------------------------
    def unguarded_value(self, node: cst.BaseExpression, stmt: StmtInfo) -> Value:
        """The value of `node` over all inputs, ignoring the `where` / conditional-expression tests around it (a
        fresh copy has none); enclosing `if` blocks still apply."""
        clone = node.deep_clone()
        self._keep.append(clone)
        return self.facts.value(clone, stmt)

    def refine(self, cond: cst.BaseExpression, truth: bool, target: cst.BaseExpression, stmt: StmtInfo,
               v: Value) -> Value:
        """`v`, the value of `target`, where `cond` has truth `truth` (a condition held in a name, a comparison op
        call or a cast of one is read as the comparison)."""
        return self.facts._refine(cond, truth, stmt, target, stmt, v)  # noqa: SLF001 - same package

    def where_hazards(self, call: cst.Call, stmt: StmtInfo) -> list["WhereHazard"]:
        """For `where(cond, a, b)`: the log / division / sqrt / negative-or-fractional pow inside a branch whose
        operand `cond` masks (it is bad only where the branch is not selected). Forward values are fine; the
        gradient of the unselected branch is 0 * inf = NaN. The double-where form (the operand itself sanitised by a
        where) and operands that are safe everywhere are not hazards; neither are label-only operands (no gradient).
        """
        op = self.index.op_of(call)
        if op is None or op.name != "where":
            return []
        args = positional(call)
        if len(args) != 3:
            return []
        cond = args[0]
        out: list[WhereHazard] = []
        for branch, truth in ((args[1], True), (args[2], False)):
            finder = _Dangerous(self.index)
            branch.visit(finder)
            for node, u, kind, exponent in finder.found:
                whole = self.unguarded_value(u, stmt)
                bad = _hazard(kind, whole, exponent)
                if bad is None:
                    continue
                origins = whole.origins
                num = finder.numerators.get(id(node))
                if num is not None:  # d(a / b)/da = 1 / b is inf too: the numerator's gradient counts
                    nv = self.facts.value(num, stmt)
                    if not nv.is_constant:
                        origins = origins | (nv.origins or frozenset({"unknown"}))
                if origins and origins <= NO_GRADIENT:
                    continue
                if _hazard(kind, self.refine(cond, truth, u, stmt, whole), exponent) is not None:
                    continue  # the condition does not mask this operand: LL101 / LL103 / LL105 decide
                out.append(WhereHazard(node, u, kind, bad))
        return out


# Labels and masks carry no gradient: a NaN in their (never used) gradient is harmless.
NO_GRADIENT = frozenset({"y_true", "mask", "count"})


@dataclass(frozen=True)
class WhereHazard:
    node: cst.CSTNode  # the log call / division / sqrt / pow
    operand: cst.BaseExpression  # its argument, or the denominator
    kind: str  # "log" | "divide" | "sqrt" | "pow"
    what: str  # what the masked-out inputs give, e.g. "log(0) = -inf"


def _hazard(kind: str, v: Value, exponent: float | None) -> str | None:
    if kind == "log":
        if v.positive:
            return None
        return "log(0) = -inf" if v.nonneg else "log of a negative = NaN"
    if kind == "log1p":
        shifted = _add(v, const(1.0))
        if shifted.positive:
            return None
        return "log1p(-1) = -inf"
    if kind == "divide":
        return None if v.nonzero else "x / 0 = inf"
    if kind == "sqrt":
        if v.can_be_negative:
            return "sqrt of a negative = NaN"
        return None if v.positive else "an infinite sqrt slope at 0"
    if kind == "pow" and exponent is not None:
        if exponent < 0 and not v.nonzero:
            return f"0 ** {exponent:g} = inf"
        if not float(exponent).is_integer() and v.can_be_negative:
            return f"a negative ** {exponent:g} = NaN"
        if 0 < exponent < 1 and not v.positive:
            return f"an infinite slope of x ** {exponent:g} at 0"
    return None


def _is_new_axis(s: cst.BaseSlice) -> bool:
    """`:`, `None`, `...` or `np.newaxis` in a subscript: the element values are unchanged."""
    if isinstance(s, cst.Slice):
        return s.lower is None and s.upper is None and s.step is None
    if isinstance(s, cst.Index):
        v = s.value
        return (isinstance(v, cst.Name) and v.value == "None") or isinstance(v, cst.Ellipsis) or (
            isinstance(v, cst.Attribute) and v.attr.value == "newaxis")
    return False


class _Dangerous(cst.CSTVisitor):
    """The ops of an expression whose value or slope is inf / NaN somewhere: log, division, sqrt, pow."""

    def __init__(self, index) -> None:  # type: ignore[no-untyped-def]
        super().__init__()
        self.index = index
        self.found: list[tuple[cst.CSTNode, cst.BaseExpression, str, float | None]] = []
        self.numerators: dict[int, cst.BaseExpression] = {}

    def visit_Lambda(self, node: cst.Lambda) -> bool:
        return False

    def visit_BinaryOperation(self, node: cst.BinaryOperation) -> None:
        if isinstance(node.operator, cst.Divide):
            self.found.append((node, node.right, "divide", None))
            self.numerators[id(node)] = node.left
        elif isinstance(node.operator, cst.Power):
            e = _literal(node.right)
            if e is not None and (e < 0 or not float(e).is_integer()):
                self.found.append((node, node.left, "pow", e))

    def visit_Call(self, node: cst.Call) -> None:
        op = self.index.op_of(node)
        if op is None:
            return
        x = _first_operand(node, op)
        if x is None:
            return
        args = positional(node)
        if op.name in ("log", "log2", "log10", "log1p"):
            self.found.append((node, x, "log1p" if op.name == "log1p" else "log", None))
        elif op.name in ("sqrt", "rsqrt"):
            self.found.append((node, x, "divide" if op.name == "rsqrt" else "sqrt", None))
        elif op.name == "reciprocal":
            self.found.append((node, x, "divide", None))
        elif op.name == "divide":
            den = args[0] if op.is_method and args else (args[1] if len(args) > 1 else None)
            if den is not None:
                self.found.append((node, den, "divide", None))
                self.numerators[id(node)] = x
        elif op.name == "pow":
            rest = args if op.is_method else args[1:]
            e = _literal(rest[0]) if rest else None
            if e is not None and (e < 0 or not float(e).is_integer()):
                self.found.append((node, x, "pow", e))


class _Divisions(cst.CSTVisitor):
    """`a / b` and `divide(a, b)`-shaped nodes of one statement (not inside nested functions)."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[cst.CSTNode, cst.BaseExpression, cst.BaseExpression]] = []

    def visit_IndentedBlock(self, node: cst.IndentedBlock) -> bool:
        return False

    def visit_Lambda(self, node: cst.Lambda) -> bool:
        return False

    def visit_BinaryOperation(self, node: cst.BinaryOperation) -> None:
        if isinstance(node.operator, cst.Divide):
            self.found.append((node, node.left, node.right))


def bounds_for(facts: Facts) -> Bounds:
    """The Bounds helper of a Facts object (one per linted module, kept on it)."""
    b = getattr(facts, "_bounds_helper", None)
    if b is None:
        b = Bounds(facts)
        facts._bounds_helper = b  # type: ignore[attr-defined]
    return b


# ---- small-by-construction values (log1p / expm1) ----------------------------------------------------------------

SMALL = 1e-2  # |x| at most this: 1 + x rounds away most of x's digits in float32 / float16


def small_term(b: Bounds, x: cst.BaseExpression, stmt: StmtInfo, depth: int = 0) -> str | None:
    """Why `x` is small by construction (so `log(1 + x)` loses it to rounding), or None. Conservative: an exp of an
    argument that is nonpositive and unbounded below (`exp(-abs(z))`, `exp(log_softmax)`), or a tiny literal times a
    bounded value (`1e-3 * sigmoid(z)`). Constants are not reported (that is an eps, folded once)."""
    if depth > 4:
        return None
    if isinstance(x, cst.Name):
        assigned = assigned_value(b.facts, x.value, stmt)
        if assigned is not None:
            return small_term(b, *assigned, depth + 1)
        return None
    if isinstance(x, cst.Call):
        op = b.index.op_of(x)
        if op is not None and op.name == "exp":
            a = _first_operand(x, op)
            if a is not None:
                r = b.range(a, stmt)
                if r.hi <= 0 and math.isinf(r.lo):
                    return "an exp of a nonpositive argument, which can be tiny"
        return None
    if isinstance(x, cst.BinaryOperation) and isinstance(x.operator, (cst.Multiply, cst.Divide)):
        r = b.range(x, stmt)
        if r.is_constant or not (math.isfinite(r.lo) and math.isfinite(r.hi)):
            return None
        if max(abs(r.lo), abs(r.hi)) <= SMALL and max(abs(r.lo), abs(r.hi)) > 0:
            return f"at most {max(abs(r.lo), abs(r.hi)):.2g} in magnitude"
    return None


def exp_minus_one(b: Bounds, node: cst.BinaryOperation, stmt: StmtInfo) -> cst.Call | None:
    """`exp(x) - 1` (the exp directly, or a name bound to it): the exp call, unless |x| is provably >= 0.5 (then
    nothing cancels)."""
    if not isinstance(node.operator, cst.Subtract) or _literal(node.right) != 1.0:
        return None
    found = b.exp_call(node.left, stmt)
    if found is None:
        return None
    call, x, s = found
    r = b.range(x, s)
    if r.lo >= 0.5 or r.hi <= -0.5:
        return None
    return call

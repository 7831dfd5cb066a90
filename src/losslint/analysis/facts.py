"""Value facts: what an expression inside a loss can be.

Each expression gets a `Value`: an interval [lo, hi] (ends open or closed), the origins it derives from (`y_pred`,
`softmax`, `sum`, `count`, `difference`...), and the guard that bounded it (`clip`, `maximum`, `+ eps`, ...). Rules ask
"can this be exactly 0?", "can it be negative?", "where does it come from?". Definitions are followed through the
assignments that reach a use inside a function, into closures, module constants, `self.x` attributes set in
`__init__`, and into same-module helpers (their returns, evaluated with the call's arguments).

The abstraction is deliberately simple (intervals, no relational facts); when in doubt a value is "anything" with no
origin, and rules only report values whose origin makes the hazard real.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace

import libcst as cst

from losslint.analysis.calls import bound_arg, later_arg, positional
from losslint.analysis.index import Def, FuncInfo, ModuleIndex, StmtInfo, function_named, operand
from losslint.analysis.names import names_in
from losslint.analysis.scopes import LOGIT_NAMES, MASK_NAMES, PRED_NAMES, TRUE_NAMES, ScopeMap
from losslint.analysis.walk import walk as cst_walk

INF = math.inf
PROB_VAR_NAMES = frozenset({"probs", "prob", "probabilities", "proba", "y_prob", "y_probs", "pred_prob",
                            "pred_probs", "y_pred", "y_hat", "yhat"})
KERAS_EPSILON = 1e-7
# A value we cannot see (an imported constant, a helper in another module, a parameter without a default) whose name
# says it is the stabilising epsilon: `c_f.small_val(dtype)`, `from .utils import EPS`, `self.smooth`.
_EPS_NAME = re.compile(r"(?:^|_)(?:eps|epsilon|small_val|small_value|tiny|smooth|smoothing)(?:$|_)", re.IGNORECASE)
# Helpers from other modules whose name says they only convert (dtype, device, tensor type): their value is their
# first argument's (`c_f.to_dtype(a == b, dtype=dtype)` is still a 0/1 mask).
_CONVERT_NAMES = frozenset({"to_dtype", "to_device", "to_tensor", "to_float", "cast", "astype", "convert_to_tensor"})
# Origins of a value that is a probability distribution by the loss's input contract.
_DISTRIBUTION = frozenset({"y_pred", "probability", "softmax"})


@dataclass(frozen=True)
class Value:
    lo: float = -INF
    hi: float = INF
    lo_open: bool = False
    hi_open: bool = False
    origins: frozenset[str] = frozenset()
    guard: str | None = None

    # -- questions rules ask ----------------------------------------------------------------------------------
    @property
    def positive(self) -> bool:
        return self.lo > 0 or (self.lo == 0 and self.lo_open)

    @property
    def negative(self) -> bool:
        return self.hi < 0 or (self.hi == 0 and self.hi_open)

    @property
    def nonneg(self) -> bool:
        return self.lo >= 0

    @property
    def nonzero(self) -> bool:
        return self.positive or self.negative

    @property
    def can_be_zero(self) -> bool:
        return not self.nonzero

    @property
    def can_be_negative(self) -> bool:
        return self.lo < 0

    @property
    def is_constant(self) -> bool:
        return self.lo == self.hi and math.isfinite(self.lo)

    def with_origins(self, *origins: str) -> "Value":
        return replace(self, origins=self.origins | frozenset(origins))

    def guarded(self, guard: str) -> "Value":
        return replace(self, guard=guard)


ANY = Value()
NONNEG = Value(0.0, INF)
POSITIVE = Value(0.0, INF, lo_open=True)
UNIT = Value(0.0, 1.0)


def const(x: float) -> Value:
    return Value(x, x)


def hull(values: list[Value]) -> Value:
    if not values:
        return ANY
    lo = min(v.lo for v in values)
    hi = max(v.hi for v in values)
    lo_open = all(v.lo_open for v in values if v.lo == lo)
    hi_open = all(v.hi_open for v in values if v.hi == hi)
    origins = frozenset().union(*(v.origins for v in values))
    guards = {v.guard for v in values}
    return Value(lo, hi, lo_open, hi_open, origins, guards.pop() if len(guards) == 1 else None)


def _add(a: Value, b: Value) -> Value:
    lo = a.lo + b.lo if not (math.isinf(a.lo) or math.isinf(b.lo)) else -INF
    hi = a.hi + b.hi if not (math.isinf(a.hi) or math.isinf(b.hi)) else INF
    guard = a.guard or b.guard
    if not a.origins and b.origins and a.positive:
        guard = guard or "+ eps"
    if not b.origins and a.origins and b.positive:
        guard = guard or "+ eps"
    return Value(lo, hi, a.lo_open or b.lo_open, a.hi_open or b.hi_open, a.origins | b.origins, guard)


def _neg(a: Value) -> Value:
    return Value(-a.hi, -a.lo, a.hi_open, a.lo_open, a.origins, a.guard)


def _mul(a: Value, b: Value) -> Value:
    corners = []
    for x in (a.lo, a.hi):
        for y in (b.lo, b.hi):
            p = x * y
            corners.append(0.0 if math.isnan(p) else p)
    lo, hi = min(corners), max(corners)
    pos = (a.positive and b.positive) or (a.negative and b.negative)
    neg = (a.positive and b.negative) or (a.negative and b.positive)
    return Value(lo, hi, pos and lo == 0, neg and hi == 0, a.origins | b.origins, a.guard or b.guard)


def _div(a: Value, b: Value) -> Value:
    # a ratio of values we know nothing about (hyper-parameters, unknown helpers) is no hazard of its own
    origins = a.origins | b.origins | ({"ratio"} if a.origins or b.origins else set())
    if b == ANY:
        # a divisor we know nothing about is a hyper-parameter (temperature, scale): LL103 assumes it is a sane
        # positive setting, so the quotient keeps the numerator's sign
        b = POSITIVE
    if b.positive:
        if a.positive:
            return Value(0.0, INF, True, False, origins)
        if a.nonneg:
            return Value(0.0, INF, False, False, origins)
        if a.negative:
            return Value(-INF, 0.0, False, True, origins)
    return Value(origins=origins)


def _norm_tag(v: Value) -> set[str]:
    """sqrt of a sum of squares is a norm (for messages: "a norm", not "a sum")."""
    return {"norm"} if "square" in v.origins else set()


def _sign_class(v: Value) -> Value:
    if v.positive:
        return replace(POSITIVE, origins=v.origins)
    if v.nonneg:
        return replace(NONNEG, origins=v.origins)
    return replace(ANY, origins=v.origins)


def _unary(op: cst.BaseUnaryOp, inner: Value) -> Value:
    """`-x` / `+x` of a value; `~x` and `not x` are unknown."""
    if isinstance(op, cst.Minus):
        return _neg(inner)
    if isinstance(op, cst.Plus):
        return inner
    return ANY


def _pow(a: Value, k: Value) -> Value:
    if k.is_constant:
        e = k.lo
        if e == 0:
            return const(1.0)
        if float(e).is_integer() and int(e) % 2 == 0 and e > 0:
            return Value(0.0, INF, a.nonzero, False, a.origins | {"square"}, a.guard)
        if e > 0 and a.nonneg:
            return Value(0.0, INF, a.positive, False, a.origins | (_norm_tag(a) if e == 0.5 else set()), a.guard)
        if e < 0 and a.positive:
            return Value(0.0, INF, True, False, a.origins, a.guard)
    if a.positive:
        return Value(0.0, INF, True, False, a.origins, a.guard)
    return Value(origins=a.origins)


def _refine_by_condition(cond: cst.BaseExpression, branch: cst.BaseExpression, true_branch: bool,
                         v: Value) -> Value:
    """`where(x > 0, x, 1)`: inside the selected branch, x is known to satisfy the condition."""
    if not isinstance(cond, cst.Comparison) or len(cond.comparisons) != 1:
        return v
    comp = cond.comparisons[0]
    left, right = cond.left, comp.comparator
    if not _same(left, branch):
        return v
    op = comp.operator
    bound = _literal(right)
    if bound is None:
        return v
    if true_branch:
        if isinstance(op, (cst.GreaterThan,)) and bound >= 0:
            return replace(v, lo=max(v.lo, bound), lo_open=True, guard="where")
        if isinstance(op, cst.GreaterThanEqual) and bound > 0:
            return replace(v, lo=max(v.lo, bound), guard="where")
        if isinstance(op, cst.NotEqual) and bound == 0 and v.nonneg:
            return replace(v, lo_open=True, guard="where")
    else:
        if isinstance(op, (cst.LessThanEqual,)) and bound >= 0:
            return replace(v, lo=max(v.lo, bound), lo_open=True, guard="where")
        if isinstance(op, cst.Equal) and bound == 0 and v.nonneg:
            return replace(v, lo_open=True, guard="where")
    return v


def _same(a: cst.CSTNode, b: cst.CSTNode) -> bool:
    return a.deep_equals(b)


def _literal(node: cst.BaseExpression) -> float | None:
    if isinstance(node, cst.Integer):
        return float(node.evaluated_value)
    if isinstance(node, cst.Float):
        return float(node.evaluated_value)
    if isinstance(node, cst.UnaryOperation) and isinstance(node.operator, cst.Minus):
        inner = _literal(node.expression)
        return -inner if inner is not None else None
    return None


_IDENTITY_OPS = frozenset({"identity", "cast", "constant", "max", "min", "prod_passthrough"})
_MAX_DEPTH = 40


class Facts:
    """Value facts for one module. Cached per (node, statement) pair."""

    def __init__(self, index: ModuleIndex, scopes: ScopeMap) -> None:
        self.index = index
        self.scopes = scopes
        self._cache: dict[tuple, Value] = {}
        self._active: set[tuple] = set()
        self._param_cache: dict[tuple[int, str], Value] = {}
        self._helper_cache: dict[tuple, Value] = {}
        self._ifexp_cache: dict[int, _IfExpConditions] = {}
        self._blocks = None  # see _block_conditions

    # ---- entry point -----------------------------------------------------------------------------------------
    def value(self, node: cst.BaseExpression, stmt: StmtInfo | None, env: dict[str, Value] | None = None,
              depth: int = 0) -> Value:
        """The value fact of `node`, an expression in statement `stmt`."""
        if stmt is None or depth > _MAX_DEPTH:
            return ANY
        key = (id(node), stmt.index, frozenset(env.items()) if env else None)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        if key in self._active:
            return ANY
        self._active.add(key)
        try:
            result = self._eval(node, stmt, env or {}, depth + 1)
        finally:
            self._active.discard(key)
        self._cache[key] = result
        return result

    # ---- evaluation ------------------------------------------------------------------------------------------
    def _eval(self, node: cst.BaseExpression, stmt: StmtInfo, env: dict[str, Value], depth: int) -> Value:
        v = self._eval_inner(node, stmt, env, depth)
        if not v.positive and isinstance(node, (cst.Name, cst.Call, cst.Subscript, cst.Attribute)):
            for cond, truth, cond_stmt in self._conditions(node, stmt):
                v = self._refine(cond, truth, cond_stmt, node, stmt, v)
        return v

    # ---- path conditions -------------------------------------------------------------------------------------
    def _conditions(self, node: cst.CSTNode, stmt: StmtInfo) -> list[tuple[cst.BaseExpression, bool, StmtInfo]]:
        """Conditions known to hold where `node` is evaluated: an enclosing `a if c else b`, an enclosing `if`/`else`,
        and earlier `if c: return` early exits; each with the truth it has there and the statement that tests it."""
        out: list[tuple[cst.BaseExpression, bool, StmtInfo]] = []
        for cond, truth in self._ifexp_conditions(stmt).get(id(node), ()):
            out.append((cond, truth, stmt))
        blocks, exits = self._block_conditions()
        for block in stmt.path:
            for cond, truth, if_stmt in blocks.get(block, ()):
                if self._unchanged(cond, if_stmt, stmt):
                    out.append((cond, truth, if_stmt))
        for cond, if_stmt, body in exits.get(id(stmt.func) if stmt.func is not None else 0, ()):
            if if_stmt.index < stmt.index and stmt.path[: len(if_stmt.path)] == if_stmt.path \
                    and body not in stmt.path and self._unchanged(cond, if_stmt, stmt):
                out.append((cond, False, if_stmt))
        return out

    def _ifexp_conditions(self, stmt: StmtInfo) -> dict[int, tuple[tuple[cst.BaseExpression, bool], ...]]:
        return self._collect(stmt).out

    def _collect(self, stmt: StmtInfo) -> "_IfExpConditions":
        cached = self._ifexp_cache.get(stmt.index)
        if cached is None:
            cached = self._ifexp_cache[stmt.index] = _IfExpConditions()
            stmt.node.visit(cached)
        return cached

    def only_checked(self, stmt: StmtInfo | None) -> bool:
        """Is `stmt` an assignment `x = ...` whose `x` is read only by `assert` statements (a sanity check such as
        `w_norm = w.pow(2).sum(0).pow(0.5); assert torch.all(w_norm > 0)`)? Its value never reaches the loss."""
        if stmt is None or stmt.func is None or not isinstance(stmt.node, cst.SimpleStatementLine):
            return False
        body = stmt.node.body
        if len(body) != 1 or not isinstance(body[0], cst.Assign) or len(body[0].targets) != 1 \
                or not isinstance(body[0].targets[0].target, cst.Name):
            return False
        name = body[0].targets[0].target.value
        reads = {"asserted": 0, "other": 0}
        target_node = body[0].targets[0].target

        def enter(node: cst.CSTNode) -> bool | None:
            if isinstance(node, cst.Assert):
                cst_walk(node, lambda n: _count(n, "asserted"))
                return False
            _count(node, "other")
            return None

        def _count(node: cst.CSTNode, kind: str) -> None:
            if isinstance(node, cst.Name) and node.value == name and node is not target_node:
                reads[kind] += 1

        cst_walk(stmt.func.node, enter)
        return reads["asserted"] > 0 and reads["other"] == 0

    def only_compared(self, node: cst.CSTNode, stmt: StmtInfo | None) -> bool:
        """Is `node` a direct operand of a comparison (`err / t.abs() > thr`)? Its inf or NaN then only decides a
        boolean (NaN compares False) and never reaches the loss value."""
        return stmt is not None and id(node) in self._collect(stmt).compared

    def _block_conditions(self):  # type: ignore[no-untyped-def]
        """block id -> conditions true in it (if / elif / else chains); function -> early-exit `if`s."""
        if self._blocks is not None:
            return self._blocks
        blocks: dict[int, list[tuple[cst.BaseExpression, bool, StmtInfo]]] = {}
        exits: dict[int, list[tuple[cst.BaseExpression, StmtInfo, int]]] = {}
        for info in self.index.stmt_info.values():
            node = info.node
            if not isinstance(node, cst.If) or self.index.branch_chain.get(id(node), id(node)) != id(node):
                continue  # an `elif` is handled with the `if` that heads its chain
            if node.orelse is None and _always_exits(node.body):
                exits.setdefault(id(info.func) if info.func is not None else 0, []).append(
                    (node.test, info, id(node.body)))
            negated: list[tuple[cst.BaseExpression, bool, StmtInfo]] = []
            branch: cst.If | cst.Else | None = node
            while isinstance(branch, cst.If):
                blocks[id(branch.body)] = negated + [(branch.test, True, info)]
                negated = negated + [(branch.test, False, info)]
                branch = branch.orelse
            if isinstance(branch, cst.Else):
                blocks[id(branch.body)] = negated
        self._blocks = (blocks, exits)
        return self._blocks

    def _unchanged(self, cond: cst.BaseExpression, at: StmtInfo, use: StmtInfo) -> bool:
        """No name the condition reads is rebound between the test and the use."""
        defs_table = use.func.defs if use.func is not None else self.index.module_defs
        for name in names_in(cond):
            for d in defs_table.get(name, []):
                if at.index < d.index < use.index:
                    return False
        return True

    def _refine(self, cond: cst.BaseExpression, truth: bool, cond_stmt: StmtInfo, target: cst.BaseExpression,
                stmt: StmtInfo, v: Value) -> Value:
        """Narrow `v`, the value of `target`, by `cond` having truth `truth`."""
        resolved = self._condition(cond, cond_stmt, target, stmt)
        if resolved is not None:  # `m = x > 0; where(m, ...)`, `tf.greater(x, 0)`, `(x > 0) & m`
            return self._refine(resolved[0], truth, resolved[1], target, stmt, v)
        if isinstance(cond, cst.BinaryOperation) and isinstance(cond.operator, (cst.BitAnd, cst.BitOr)):
            if isinstance(cond.operator, cst.BitAnd) == truth:
                v = self._refine(cond.left, truth, cond_stmt, target, stmt, v)
                return self._refine(cond.right, truth, cond_stmt, target, stmt, v)
            return v
        if isinstance(cond, cst.UnaryOperation) and isinstance(cond.operator, cst.Not):
            return self._refine(cond.expression, not truth, cond_stmt, target, stmt, v)
        if isinstance(cond, cst.BooleanOperation):
            # `a and b` true, or `a or b` false, makes both parts hold
            if isinstance(cond.operator, cst.And) == truth:
                v = self._refine(cond.left, truth, cond_stmt, target, stmt, v)
                return self._refine(cond.right, truth, cond_stmt, target, stmt, v)
            return v
        if isinstance(cond, cst.Comparison) and len(cond.comparisons) == 1:
            comp = cond.comparisons[0]
            op, subject, bound = comp.operator, cond.left, _literal(comp.comparator)
            if bound is None:
                op, subject, bound = _FLIPPED.get(type(op), op), comp.comparator, _literal(cond.left)
            if bound is None or not self._matches(subject, cond_stmt, target, stmt):
                return v
            return _narrow(v, op, bound, truth)
        if truth and self._matches(cond, cond_stmt, target, stmt):
            return _narrow(v, cst.NotEqual(), 0.0, True)  # `if x:` / `if not x: return`: x != 0
        if truth and isinstance(cond, cst.Call) and _is_any(cond):
            # `if mask.any():` makes sum(mask) / count_nonzero(mask) >= 1
            target_call = self._definition(target, stmt)
            if isinstance(target_call, cst.Call):
                op = self.index.op_of(target_call)
                inner = _first_operand(target_call, op)
                if op is not None and op.name in ("sum", "count_nonzero") and inner is not None \
                        and _same(self._strip(inner), self._strip(_first_operand(cond, None) or cond)):
                    return _narrow(v, cst.NotEqual(), 0.0, True)
        return v

    def _condition(self, cond: cst.BaseExpression, cond_stmt: StmtInfo, target: cst.BaseExpression,
                   stmt: StmtInfo) -> tuple[cst.BaseExpression, StmtInfo] | None:
        """A condition spelled as a name bound to a comparison, a cast of one, or a comparison op call, as the
        comparison it stands for (with the statement it is in); None when `cond` is already plain."""
        if isinstance(cond, cst.Name):
            if self._matches(cond, cond_stmt, target, stmt):
                return None
            d = _single_reaching_def(self, cond.value, cond_stmt)
            if d is not None and d.stmt is not None and isinstance(
                    d.value, (cst.Comparison, cst.BooleanOperation, cst.UnaryOperation, cst.BinaryOperation, cst.Call)):
                return d.value, d.stmt
            return None
        if isinstance(cond, cst.Call):
            op = self.index.op_of(cond)
            args = positional(cond)
            if op is not None and op.name in ("cast", "to_bool", "identity") and args and not op.is_method:
                return args[0], cond_stmt
            if op is not None and op.name in _COMPARISON_OPS and len(args) == 2 and not op.is_method:
                return cst.Comparison(args[0], [cst.ComparisonTarget(_COMPARISON_OPS[op.name](), args[1])]), cond_stmt
        return None

    def _strip(self, expr: cst.BaseExpression) -> cst.BaseExpression:
        """`expr` without the reshapes, casts and dtype/device moves around it."""
        for _ in range(8):
            if not isinstance(expr, cst.Call):
                return expr
            op = self.index.op_of(expr)
            if op is not None and op.name in ("identity", "cast"):
                inner = _first_operand(expr, op)
            elif op is None and _called_name(expr) in _CONVERT_NAMES:
                inner = _first_operand(expr, None)
            else:
                return expr
            if inner is None:
                return expr
            expr = inner
        return expr

    def _definition(self, expr: cst.BaseExpression, stmt: StmtInfo) -> cst.BaseExpression:
        """`expr` itself, or for a name with a single reaching assignment the expression it was assigned."""
        expr = self._strip(expr)
        if isinstance(expr, cst.Name):
            d = _single_reaching_def(self, expr.value, stmt)
            if d is not None and d.value is not None:
                return self._strip(d.value)
        return expr

    def _matches(self, a: cst.BaseExpression, a_stmt: StmtInfo, b: cst.BaseExpression, b_stmt: StmtInfo) -> bool:
        """Do two expressions denote the same tensor (directly, through identity ops, or through one assignment)?"""
        if _same(self._strip(a), self._strip(b)):
            return True
        return _same(self._definition(a, a_stmt), self._definition(b, b_stmt))

    # ---- relational facts the intervals cannot see -----------------------------------------------------------
    def denominator(self, numerator: cst.BaseExpression | None, den: cst.BaseExpression, stmt: StmtInfo | None) -> Value:
        """The value of a divisor, knowing its numerator: `p / sum(p, axis)` renormalises a predicted distribution,
        whose total is 1 by the loss's input contract (Keras' own cross-entropies do this)."""
        v = self.value(den, stmt)
        if numerator is None or stmt is None or not v.can_be_zero:
            return v
        den_def = self._definition(den, stmt)
        if isinstance(den_def, cst.Call):
            op = self.index.op_of(den_def)
            inner = _first_operand(den_def, op)
            if op is not None and op.name == "sum" and inner is not None and self._matches(inner, stmt, numerator, stmt):
                if self.value(numerator, stmt).origins & _DISTRIBUTION:
                    return replace(v, lo=0.0, lo_open=True, guard="normalised distribution")
        return v

    def _sum_relation(self, node: cst.BinaryOperation, stmt: StmtInfo) -> Value | None:
        """Two relations of segmentation losses: sum(p) - sum(p * t) >= 0 for p >= 0 and t in [0, 1] (the
        intersection never exceeds either sum), and sum(t) + cumsum(1 - t) >= 1 for t in [0, 1] (the union of the
        Lovasz-extension gradient)."""
        left, right = self._definition(node.left, stmt), self._definition(node.right, stmt)
        if isinstance(node.operator, cst.Subtract):
            total, inter = self._sum_operand(left), self._sum_operand(right)
            if total is None or inter is None or not isinstance(inter, cst.BinaryOperation) \
                    or not isinstance(inter.operator, cst.Multiply):
                return None
            for a, b in ((inter.left, inter.right), (inter.right, inter.left)):
                if _same(self._strip(a), total) and self.value(a, stmt).nonneg:
                    bv = self.value(b, stmt)
                    if bv.lo >= 0 and bv.hi <= 1:
                        return Value(0.0, INF, origins=frozenset({"sum", "difference"}), guard="intersection <= sum")
            return None
        if isinstance(node.operator, cst.Add):
            for s, c in ((left, right), (right, left)):
                t = self._sum_operand(s)
                if t is None or not isinstance(c, cst.Call):
                    continue
                op = self.index.op_of(c)
                comp = self._strip(_first_operand(c, op)) if op is not None and op.name == "cumsum" else None
                if isinstance(comp, cst.BinaryOperation) and isinstance(comp.operator, cst.Subtract) \
                        and _literal(comp.left) == 1.0 and _same(self._strip(comp.right), t):
                    tv = self.value(comp.right, stmt)
                    if tv.lo >= 0 and tv.hi <= 1:
                        return Value(1.0, INF, origins=frozenset({"sum"}), guard="union >= 1")
        return None

    def _sum_operand(self, expr: cst.BaseExpression) -> cst.BaseExpression | None:
        if isinstance(expr, cst.Call):
            op = self.index.op_of(expr)
            if op is not None and op.name == "sum":
                inner = _first_operand(expr, op)
                return self._strip(inner) if inner is not None else None
        return None

    def _eval_inner(self, node: cst.BaseExpression, stmt: StmtInfo, env: dict[str, Value], depth: int) -> Value:
        ev = lambda n: self.value(n, stmt, env, depth)  # noqa: E731
        if isinstance(node, (cst.Integer, cst.Float)):
            return const(float(node.evaluated_value))
        if isinstance(node, cst.Imaginary):
            return ANY
        if isinstance(node, cst.Name):
            if node.value in ("True",):
                return const(1.0)
            if node.value in ("False", "None"):
                return const(0.0)
            return self._name(node.value, stmt, env, depth)
        if isinstance(node, cst.UnaryOperation):
            return _unary(node.operator, ev(node.expression))
        if isinstance(node, cst.BinaryOperation):
            return self._binary(node, stmt, ev)
        if isinstance(node, cst.Comparison):
            return Value(0.0, 1.0, origins=frozenset({"mask"}))
        if isinstance(node, cst.IfExp):
            return hull([ev(node.body), ev(node.orelse)])
        if isinstance(node, cst.Subscript):
            return self._subscript(node, stmt, ev)
        if isinstance(node, cst.Attribute):
            return self._attribute(node, stmt, env, depth, ev)
        if isinstance(node, cst.Call):
            return self._call(node, stmt, env, depth, ev)
        return ANY

    def _binary(self, node: cst.BinaryOperation, stmt: StmtInfo, ev) -> Value:  # type: ignore[no-untyped-def]
        op = node.operator
        a, b = ev(node.left), ev(node.right)
        if isinstance(op, (cst.Add, cst.Subtract)) and not (a.positive and b.nonneg):
            related = self._sum_relation(node, stmt)
            if related is not None:
                return related.with_origins(*(a.origins | b.origins))
        if isinstance(op, cst.Add):
            mix = self._convex_mix(node, stmt, ev)
            if mix is not None:
                return mix.with_origins(*(a.origins | b.origins))
            return _add(a, b)
        if isinstance(op, cst.Subtract):
            r = _add(a, _neg(b))
            if a.origins and b.origins:
                r = r.with_origins("difference")
            return r
        if isinstance(op, cst.Multiply):
            if _same(node.left, node.right):
                return Value(0.0, INF, a.nonzero, False, a.origins | {"square"}, a.guard)
            return _mul(a, b)
        if isinstance(op, cst.Divide):
            return _div(a, b)
        if isinstance(op, cst.Power):
            return _pow(a, b)
        return Value(origins=a.origins | b.origins)

    def _convex_mix(self, node: cst.BinaryOperation, stmt: StmtInfo, ev) -> Value | None:  # type: ignore[no-untyped-def]
        """`t * a + (1 - t) * b` with t in [0, 1] (the focal loss's p_t) lies between a and b: interval arithmetic alone
        would lose the link between t and 1 - t and let the sum reach 0."""
        left, right = node.left, node.right
        if not (isinstance(left, cst.BinaryOperation) and isinstance(left.operator, cst.Multiply)
                and isinstance(right, cst.BinaryOperation) and isinstance(right.operator, cst.Multiply)):
            return None
        for first, second in ((left, right), (right, left)):
            for t, a in ((first.left, first.right), (first.right, first.left)):
                for one_minus, b in ((second.left, second.right), (second.right, second.left)):
                    if (isinstance(one_minus, cst.BinaryOperation) and isinstance(one_minus.operator, cst.Subtract)
                            and _literal(one_minus.left) == 1.0 and _same(one_minus.right, t)):
                        tv = ev(t)
                        if tv.lo >= 0 and tv.hi <= 1:
                            return hull([ev(a), ev(b)])
        return None

    def _subscript(self, node: cst.Subscript, stmt: StmtInfo, ev) -> Value:  # type: ignore[no-untyped-def]
        base = node.value
        # x.shape[0], tf.shape(x)[0], x.size(0): sizes, which are positive for any real batch
        if isinstance(base, cst.Attribute) and base.attr.value == "shape":
            return POSITIVE.with_origins("size")
        if isinstance(base, cst.Call):
            op = self.index.op_of(base)
            if op is not None and op.name == "shape":
                return POSITIVE.with_origins("size")
        v = ev(base)
        if not v.positive and len(node.slice) == 1 and isinstance(node.slice[0].slice, cst.Index):
            # `x[x != 0]`, `x[keep]` with `keep = x > 0`: a boolean selection keeps only the elements that pass
            index = node.slice[0].slice.value
            cond = self._definition(index, stmt)
            if isinstance(cond, (cst.Comparison, cst.BooleanOperation)):
                v = self._refine(cond, True, stmt, base, stmt, v)
        return v

    def _attribute(self, node: cst.Attribute, stmt: StmtInfo, env, depth, ev) -> Value:  # type: ignore[no-untyped-def]
        attr = node.attr.value
        qualified = self.index.qualify(node)
        if qualified is not None:
            if qualified.endswith((".pi", ".e")):
                return const(math.pi if qualified.endswith(".pi") else math.e)
            if qualified.endswith(".inf"):
                return const(INF)
            return ANY
        if attr in ("eps", "tiny", "resolution", "smallest_normal") and isinstance(node.value, cst.Call):
            op = self.index.op_of(node.value)
            if op is not None and op.name == "finfo":
                return POSITIVE.guarded("eps")
        if isinstance(node.value, cst.Name) and node.value.value == "self":
            return self._self_attr(attr, stmt, depth)
        if attr in ("data", "T", "mT", "real"):
            return ev(node.value)
        if _EPS_NAME.search(attr):
            return POSITIVE.guarded("eps")  # `config.EPS`, `utils.smooth`: the name states the intent
        return ANY

    def _self_attr(self, attr: str, stmt: StmtInfo, depth: int) -> Value:
        f = stmt.func
        while f is not None and f.cls is None:
            f = f.parent
        if f is None or f.cls is None:
            return ANY
        defs = f.cls.self_attrs.get(attr, [])
        if not defs:
            return POSITIVE.guarded("eps") if _EPS_NAME.search(attr) else ANY  # set by a base class
        values = []
        for d in defs:
            if d.value is None or d.stmt is None:
                return ANY
            values.append(self.value(d.value, d.stmt, None, depth))
        return hull(values)

    # ---- names -----------------------------------------------------------------------------------------------
    def _name_value(self, name: str, stmt: StmtInfo, env: dict[str, Value], depth: int) -> Value:
        if name in env:
            return env[name]
        func = stmt.func
        use_index = stmt.index
        while func is not None:
            defs = func.defs.get(name)
            if defs:
                return self._reaching(func, name, defs, use_index, stmt.path, depth)
            # a closure reads the enclosing function's final value
            use_index = 1 << 60
            func = func.parent
        defs = self.index.module_defs.get(name)
        if defs:
            index = stmt.index if stmt.func is None else 1 << 60
            return self._reaching(None, name, defs, index, stmt.path, depth)
        return ANY

    def _name(self, name: str, stmt: StmtInfo, env: dict[str, Value], depth: int) -> Value:
        v = self._name_value(name, stmt, env, depth)
        if v == ANY and _EPS_NAME.search(name):
            return POSITIVE.guarded("eps")  # `from .utils import EPS`, an `eps` parameter without a default
        if not v.origins and v.guard is None and name.lower() in PROB_VAR_NAMES and not v.is_constant:
            # `probs = model(x)`: the name is all we know, and it says probability
            return UNIT.with_origins("probability")
        return v

    def _reaching(self, func: FuncInfo | None, name: str, defs: list[Def], use_index: int,
                  use_path: tuple[int, ...], depth: int) -> Value:
        before = [d for d in defs if d.index < use_index]
        if not before:
            return ANY
        reaching: list[Def] = []
        for d in reversed(before):
            if self._exclusive(d.path, use_path):
                continue  # assigned in another branch of an if / elif / else that contains the use
            reaching.append(d)
            if d.path == use_path[: len(d.path)]:
                break  # this definition runs on every path to the use
        values = [self._def_value(func, d, depth) for d in reaching]
        return hull(values)

    def _exclusive(self, a: tuple[int, ...], b: tuple[int, ...]) -> bool:
        """Are two block paths in different branches of the same if / elif / else chain?"""
        for x, y in zip(a, b):
            if x != y:
                chain = self.index.branch_chain.get(x)
                return chain is not None and chain == self.index.branch_chain.get(y)
        return False

    def _def_value(self, func: FuncInfo | None, d: Def, depth: int) -> Value:
        if d.kind == "param":
            return self.param_value(func, d.name, depth) if func is not None else ANY
        if d.value is None or d.stmt is None:
            return ANY
        v = self.value(d.value, d.stmt, None, depth)
        if d.kind == "store":
            prev = self._name(d.name, d.stmt, {}, depth + 1)
            return hull([prev, v])
        if d.kind == "aug":
            prev = self._name(d.name, d.stmt, {}, depth + 1)
            op = d.operator
            if isinstance(op, cst.AddAssign):
                return _add(prev, v)
            if isinstance(op, cst.SubtractAssign):
                return _add(prev, _neg(v))
            if isinstance(op, cst.MultiplyAssign):
                return _mul(prev, v)
            if isinstance(op, cst.DivideAssign):
                return _div(prev, v)
            return Value(origins=prev.origins | v.origins)
        return v

    def param_value(self, func: FuncInfo, name: str, depth: int = 0) -> Value:
        """A parameter's fact: its role in a loss signature, its name, its default, or its callers' arguments."""
        key = (id(func.node), name)
        if key in self._param_cache:
            return self._param_cache[key]
        self._param_cache[key] = ANY  # recursion guard
        result = self._param_value(func, name, depth)
        self._param_cache[key] = result
        return result

    def _param_value(self, func: FuncInfo, name: str, depth: int) -> Value:
        param = next((p for p in func.params if p.name == name), None)
        if param is None:
            return ANY
        scope = self.scopes.scope_of_func(func)
        role = scope.param_roles.get(name) if scope is not None else None
        if role == "y_true":
            return UNIT.with_origins("y_true")
        if role == "y_pred":
            return UNIT.with_origins("y_pred")
        if role == "y_logits":
            return ANY.with_origins("logits")
        if param.default is not None:
            lit = _literal(param.default)
            if lit is not None:
                # a `smooth=1.0` / `eps=1e-7` parameter: callers may override it, but a positive default states the
                # intent, and reporting every call of a guarded loss would be noise.
                if lit > 0:
                    return Value(0.0, INF, True, False, frozenset(), "positive default")
                return const(lit)
        if scope is not None and scope.kind == "helper":
            args = self._caller_args(func, param, depth)
            if args:
                return hull(args)
        lname = name.lower()
        if scope is not None and scope.param_roles:
            # the signature already says which parameters are y_true / y_pred: `q` in (y_true, y_pred, q) is a
            # hyper-parameter, not a second prediction
            return UNIT.with_origins("mask") if lname in MASK_NAMES else ANY
        if lname in TRUE_NAMES:
            return UNIT.with_origins("y_true")
        if lname in PRED_NAMES:
            return UNIT.with_origins("y_pred")
        if lname in LOGIT_NAMES:
            return ANY.with_origins("logits")
        if lname in MASK_NAMES:
            return UNIT.with_origins("mask")
        return ANY

    def _caller_args(self, func: FuncInfo, param, depth: int) -> list[Value]:  # type: ignore[no-untyped-def]
        out: list[Value] = []
        for call, stmt in self.index.all_calls:
            if self.callee(call, stmt) is not func:
                continue
            arg = bound_arg(call, param)
            if arg is None:
                if param.default is not None:
                    continue
                return []
            out.append(self.value(arg, stmt, None, depth))
        return out

    def callee(self, call: cst.Call, stmt: StmtInfo) -> FuncInfo | None:
        return function_named(self.index, call.func, stmt)

    # ---- calls -----------------------------------------------------------------------------------------------
    def _call(self, node: cst.Call, stmt: StmtInfo, env, depth, ev) -> Value:  # type: ignore[no-untyped-def]
        op = self.index.op_of(node)
        args = positional(node)
        if op is None:
            return self._helper_call(node, stmt, env, depth)
        name = op.name
        receiver = node.func.value if op.is_method and isinstance(node.func, cst.Attribute) else None
        first = receiver if receiver is not None else (args[0] if args else None)
        rest = args if receiver is not None else args[1:]

        def arg(i: int, kw: tuple[str, ...] = ()) -> cst.BaseExpression | None:
            return later_arg(node, rest, i, kw)

        x = ev(first) if first is not None else ANY
        if name in ("exp",):  # exp(-abs(x)) <= 1
            hi = math.exp(x.hi) if x.hi < 700 else INF
            return Value(0.0, hi, True, False, x.origins | {"exp"})
        if name == "softplus":
            return POSITIVE.with_origins("softplus")
        if name == "relu":
            return Value(0.0, max(x.hi, 0.0), False, False, x.origins, x.guard)
        if name == "sigmoid":
            return UNIT.with_origins("sigmoid", "probability")
        if name == "softmax":
            return UNIT.with_origins("softmax", "probability")
        if name in ("log_softmax", "log_sigmoid"):
            return Value(-INF, 0.0, origins=frozenset({"log-probability"}))
        if name == "epsilon":
            return const(KERAS_EPSILON).guarded("eps")
        if name in ("square",):
            return Value(0.0, INF, x.nonzero, False, x.origins | {"square"}, x.guard)
        if name == "abs":
            hi = max(abs(x.lo), abs(x.hi))
            return Value(0.0, hi, x.nonzero, False, x.origins, x.guard)
        if name == "sqrt":
            return Value(0.0, INF, x.positive, False, x.origins | _norm_tag(x), x.guard)
        if name == "pow":
            e = arg(0, ("exponent", "y", "exp"))
            return _pow(x, ev(e) if e is not None else ANY)
        if name in ("log", "log2", "log10", "log1p"):
            shifted = _add(x, const(1.0)) if name == "log1p" else x
            if shifted.lo >= 1:
                return Value(0.0, INF, origins=x.origins | {"log"})
            return Value(origins=x.origins | {"log"})
        if name == "negative":
            return _neg(x)
        if name == "add":
            y = arg(0, ("y", "other"))
            return _add(x, ev(y)) if y is not None else ANY
        if name == "subtract":
            y = arg(0, ("y", "other"))
            if y is None:
                return ANY
            yv = ev(y)
            r = _add(x, _neg(yv))
            return r.with_origins("difference") if x.origins and yv.origins else r
        if name == "multiply":
            y = arg(0, ("y", "other"))
            return _mul(x, ev(y)) if y is not None else ANY
        if name == "divide":
            y = arg(0, ("y", "other"))
            return _div(x, ev(y)) if y is not None else ANY
        if name == "reciprocal":
            return _div(const(1.0), x)
        if name == "divide_no_nan":
            y = arg(0, ("y",))
            yv = ev(y) if y is not None else ANY
            r = _div(x, replace(yv, lo_open=True) if yv.nonneg else yv)
            return r.guarded("divide_no_nan")
        if name == "nan_to_num":
            return x.guarded("nan_to_num")
        if name == "maximum":
            y = arg(0, ("y", "other", "min"))
            if y is None:
                return ANY
            yv = ev(y)
            lo, lo_open = (x.lo, x.lo_open) if x.lo > yv.lo or (x.lo == yv.lo and x.lo_open) else (yv.lo, yv.lo_open)
            return Value(lo, max(x.hi, yv.hi), lo_open, False, x.origins, "maximum")
        if name == "minimum":
            y = arg(0, ("y", "other", "max"))
            if y is None:
                return ANY
            yv = ev(y)
            return Value(min(x.lo, yv.lo), min(x.hi, yv.hi), False, False, x.origins, x.guard)
        if name == "clip":
            lo_e = arg(0, ("clip_value_min", "min_value", "min", "a_min", "x_min", "lower"))
            hi_e = arg(1, ("clip_value_max", "max_value", "max", "a_max", "x_max", "upper"))
            lo_v = ev(lo_e) if lo_e is not None else None
            hi_v = ev(hi_e) if hi_e is not None else None
            lo, lo_open = x.lo, x.lo_open
            if lo_v is not None and (lo_v.lo > lo or (lo_v.lo == lo and lo_v.lo_open)):
                lo, lo_open = lo_v.lo, lo_v.lo_open
            hi, hi_open = x.hi, x.hi_open
            if hi_v is not None and (hi_v.hi < hi or (hi_v.hi == hi and hi_v.hi_open)):
                hi, hi_open = hi_v.hi, hi_v.hi_open
            return Value(lo, hi, lo_open, hi_open, x.origins, "clip")
        if name == "where":
            if len(args) >= 3:
                cond, a, b = args[0], args[1], args[2]
                va = _refine_by_condition(cond, a, True, ev(a))
                vb = _refine_by_condition(cond, b, False, ev(b))
                return hull([va, vb])
            return ANY
        if name in ("sum",):
            if x.positive:
                return POSITIVE.with_origins("sum", *x.origins)
            if x.nonneg:
                return NONNEG.with_origins("sum", *x.origins)
            return Value(origins=x.origins | {"sum"})
        if name == "mean":
            return replace(x, origins=x.origins | {"mean"})
        if name in ("max", "min", "identity", "cast", "constant"):
            return x
        if name == "prod":
            return _sign_class(x)
        if name in ("std", "var"):
            return NONNEG.with_origins("std", *x.origins)
        if name == "norm":
            return Value(0.0, INF, x.positive, False, x.origins | {"norm"})
        if name == "count_nonzero":
            return NONNEG.with_origins("count")
        if name in ("size", "shape"):
            return POSITIVE.with_origins("size")
        if name in ("ones_like", "ones"):
            return const(1.0)
        if name == "zeros":
            return const(0.0)
        if name == "eye":
            return UNIT
        if name == "to_bool":
            return UNIT.with_origins("mask")
        if name == "cumsum":
            return _sign_class(x).with_origins("sum")
        if name == "zeros_like":
            return const(0.0)
        if name in ("greater", "greater_equal", "not_equal", "equal", "less"):
            return UNIT.with_origins("mask")
        if name == "fused_loss":
            return NONNEG.with_origins("loss")
        if name == "logsumexp":
            return ANY.with_origins("logsumexp")
        return ANY

    def _helper_call(self, node: cst.Call, stmt: StmtInfo, env, depth) -> Value:  # type: ignore[no-untyped-def]
        f = self.callee(node, stmt)
        if f is None or not f.returns or depth > _MAX_DEPTH - 10:
            # `x.size(0)` on a tensor is a size
            if isinstance(node.func, cst.Attribute) and node.func.attr.value in ("size", "numel", "dim"):
                return POSITIVE.with_origins("size")
            called = _called_name(node)
            if f is None and called is not None:
                if _EPS_NAME.search(called):
                    return POSITIVE.guarded("eps")  # `c_f.small_val(dtype)`: a helper in another module
                first = _first_operand(node, None)
                if called in _CONVERT_NAMES and first is not None:
                    return self.value(first, stmt, env or None, depth)
            return ANY
        bound: dict[str, Value] = {}
        for p in f.params:
            a = bound_arg(node, p)
            if a is not None:
                bound[p.name] = self.value(a, stmt, env or None, depth)
        key = (id(f.node), tuple(sorted(bound.items(), key=lambda kv: kv[0])))
        try:
            cached = self._helper_cache.get(key)
        except TypeError:
            cached = None
        if cached is not None:
            return cached
        values = [self.value(ret, rstmt, bound, depth + 2) for ret, rstmt in f.returns]
        result = hull(values)
        try:
            self._helper_cache[key] = result
        except TypeError:
            pass
        return result


_FLIPPED: dict[type, cst.BaseCompOp] = {
    cst.GreaterThan: cst.LessThan(), cst.LessThan: cst.GreaterThan(), cst.GreaterThanEqual: cst.LessThanEqual(),
    cst.LessThanEqual: cst.GreaterThanEqual(),
}
_NEGATED: dict[type, cst.BaseCompOp] = {
    cst.GreaterThan: cst.LessThanEqual(), cst.LessThanEqual: cst.GreaterThan(), cst.LessThan: cst.GreaterThanEqual(),
    cst.GreaterThanEqual: cst.LessThan(), cst.Equal: cst.NotEqual(), cst.NotEqual: cst.Equal(),
}


_COMPARISON_OPS: dict[str, type] = {"greater": cst.GreaterThan, "greater_equal": cst.GreaterThanEqual,
                                     "less": cst.LessThan, "not_equal": cst.NotEqual, "equal": cst.Equal}


def _narrow(v: Value, op: cst.BaseCompOp, bound: float, truth: bool) -> Value:
    """`v` restricted to the values for which `v <op> bound` has truth `truth`."""
    if not truth:
        negated = _NEGATED.get(type(op))
        if negated is None:
            return v
        op = negated
    if isinstance(op, cst.NotEqual) and bound == 0:
        if v.lo == 0:
            return replace(v, lo_open=True, guard="if")
        if v.hi == 0:
            return replace(v, hi_open=True, guard="if")
        return v
    if isinstance(op, (cst.GreaterThan, cst.GreaterThanEqual)) and bound >= v.lo:
        return replace(v, lo=bound, lo_open=isinstance(op, cst.GreaterThan) or (bound == v.lo and v.lo_open),
                       guard="if")
    if isinstance(op, (cst.LessThan, cst.LessThanEqual)) and bound <= v.hi:
        return replace(v, hi=bound, hi_open=isinstance(op, cst.LessThan) or (bound == v.hi and v.hi_open),
                       guard="if")
    return v


def _always_exits(body: cst.BaseSuite) -> bool:
    """Does a block end in return / raise / continue / break?"""
    if isinstance(body, cst.SimpleStatementSuite):
        last = body.body[-1] if body.body else None
    else:
        stmts = body.body
        if not stmts or not isinstance(stmts[-1], cst.SimpleStatementLine):
            return False
        last = stmts[-1].body[-1] if stmts[-1].body else None
    return isinstance(last, (cst.Return, cst.Raise, cst.Continue, cst.Break))


def _called_name(call: cst.Call) -> str | None:
    func = call.func
    if isinstance(func, cst.Attribute):
        return func.attr.value
    if isinstance(func, cst.Name):
        return func.value
    return None


def _first_operand(call: cst.Call, op) -> cst.BaseExpression | None:  # type: ignore[no-untyped-def]
    """The tensor a call works on: the receiver of a tensor method, else the first positional argument."""
    if (op is not None and op.is_method) or (op is None and isinstance(call.func, cst.Attribute)
                                             and not positional(call) and _called_name(call) == "any"):
        return call.func.value if isinstance(call.func, cst.Attribute) else None
    pos = positional(call)
    return pos[0] if pos else None


def _is_any(call: cst.Call) -> bool:
    return _called_name(call) == "any"


class _IfExpConditions(cst.CSTVisitor):
    """For every expression node of one statement, the `a if c else b` / `where(c, a, b)` tests that enclose it and
    their truth."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[tuple[cst.BaseExpression, bool]] = []
        self.out: dict[int, tuple[tuple[cst.BaseExpression, bool], ...]] = {}
        self.compared: set[int] = set()  # direct operands of a comparison

    def on_visit(self, node: cst.CSTNode) -> bool:
        if self.stack:
            self.out[id(node)] = tuple(self.stack)
        if isinstance(node, cst.Comparison):
            self.compared.add(id(node.left))
            self.compared.update(id(c.comparator) for c in node.comparisons)
        if isinstance(node, (cst.IndentedBlock, cst.FunctionDef, cst.Lambda)):
            return False  # the statements of a body are statements of their own
        test, branches = None, ()
        if isinstance(node, cst.IfExp):
            test, branches = node.test, ((node.body, True), (node.orelse, False))
        elif isinstance(node, cst.Call) and _called_name(node) in ("where", "select", "switch"):
            # `where(c, a, b)` selects a where c holds: its value (not its gradient, LL107's concern) is guarded
            args = positional(node)
            if len(args) == 3:
                test, branches = args[0], ((args[1], True), (args[2], False))
        if test is None:
            return True
        test.visit(self)
        for branch, truth in branches:
            self.stack.append((test, truth))
            branch.visit(self)
            self.stack.pop()
        return False


# ---- patterns shared by several rules ------------------------------------------------------------------------

def activation_under_log(facts: Facts, arg: cst.BaseExpression, stmt: StmtInfo, depth: int = 0) -> str | None:
    """If `arg` is (a name bound to) softmax(x), sigmoid(x), 1 - sigmoid(x) or 1 + exp(-x) with no guard in
    between, name the pattern; `log` of it should be the fused op (LL102)."""
    if depth > 4:
        return None
    index = facts.index
    if isinstance(arg, cst.Call):
        op = index.op_of(arg)
        if op is not None:
            if op.name in ("softmax", "sigmoid"):
                return op.name
            if op.name in ("identity", "cast"):
                inner = operand(arg, op)
                return activation_under_log(facts, inner, stmt, depth + 1) if inner is not None else None
        return None
    if isinstance(arg, cst.BinaryOperation):
        left = _literal(arg.left)
        if left == 1.0 and isinstance(arg.operator, cst.Subtract):
            inner = activation_under_log(facts, arg.right, stmt, depth + 1)
            return "1 - sigmoid" if inner == "sigmoid" else None
        if left == 1.0 and isinstance(arg.operator, cst.Add) and isinstance(arg.right, cst.Call):
            op = index.op_of(arg.right)
            x = operand(arg.right, op) if op is not None and op.name == "exp" else None
            # `log(1 + exp(-abs(x)))`, the stable softplus tail: exp of a bounded argument cannot overflow
            if x is not None and not facts.value(x, stmt).hi <= 80.0:
                return "1 + exp"
        return None
    if isinstance(arg, cst.Name):
        assigned = assigned_value(facts, arg.value, stmt)
        if assigned is not None:
            return activation_under_log(facts, *assigned, depth + 1)
    return None


def _single_reaching_def(facts: Facts, name: str, stmt: StmtInfo) -> Def | None:
    defs = stmt.func.defs.get(name) if stmt.func is not None else facts.index.module_defs.get(name)
    if not defs:
        return None
    before = [d for d in defs if d.index < stmt.index]
    if not before:
        return None
    last = before[-1]
    if last.kind != "assign" or last.path != stmt.path[: len(last.path)]:
        return None
    return last


def assigned_value(facts: Facts, name: str, stmt: StmtInfo) -> tuple[cst.BaseExpression, StmtInfo] | None:
    """The value the single assignment of `name` reaching `stmt` gives it, with that assignment's statement."""
    d = _single_reaching_def(facts, name, stmt)
    if d is None or d.value is None or d.stmt is None:
        return None
    return d.value, d.stmt


def origin_phrase(v: Value) -> str:
    """Words for where a value comes from, for messages."""
    o = v.origins
    for tag, words in (("softmax", "a softmax output"), ("sigmoid", "a sigmoid output"), ("count", "a count"),
                       ("mask", "a mask sum" if "sum" in o else "a mask"), ("norm", "a norm"),
                       ("std", "a standard deviation"), ("sum", "a sum"), ("y_pred", "y_pred"), ("y_true", "y_true"),
                       ("probability", "a probability"), ("logits", "logits"), ("difference", "a difference"),
                       ("ratio", "a ratio")):
        if tag in o:
            return words
    return "a value"

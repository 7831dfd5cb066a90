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
  `scaler.transform(X)`, `X / 255.`);
- what is in force where a model is built, compiled or fit (`context_at`, `models()`): the Keras dtype policy (the
  settings `analysis/dtypes.py` finds, placed in statement order, through same-module helpers that set it and the
  callers of the function a statement is in) and the `tf.distribute` strategy (`MirroredStrategy`,
  `MultiWorkerMirroredStrategy`, `TPUStrategy`, `OneDeviceStrategy`, `tf.distribute.get_strategy()`, ...), with
  whether the statement runs inside that strategy's `with strategy.scope():`.

Sequences are read in straight-line order within one region (the module body or one function body): an event in a
branch only counts for the code that branch encloses, so nothing is inferred across `if` arms.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field, replace

import libcst as cst

from losslint.analysis.calls import arg, kwarg, positional
from losslint.analysis.dtypes import LOW_PRECISION, PolicySetting, dtypes_of, reaching_values
from losslint.analysis.index import ClassInfo, Def, FuncInfo, ModuleIndex, StmtInfo, WithInfo, function_named
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


@dataclass(frozen=True, eq=False)
class PolicyInForce:
    """The global Keras dtype policy in force at a statement. `definite` is False when the setting is on a branch that
    does not enclose the statement, or when callers disagree, or a later setting may run first."""

    name: str | None  # "mixed_float16", "mixed_bfloat16", "float32", ...; None when the code does not say which
    dtype: str | None  # its compute dtype ("float16", "bfloat16", "float32"), None when unknown
    setting: PolicySetting  # the call that set it (`setting.call`, `setting.stmt`; `ModelFlow.line_of(call)`)
    definite: bool = True

    @property
    def low_precision(self) -> bool:
        return self.dtype in LOW_PRECISION


# Strategies that run one replica: a per-replica batch is the global batch.
_ONE_REPLICA = frozenset({"OneDeviceStrategy", "_DefaultDistributionStrategy"})


@dataclass(eq=False)
class Strategy:
    """A `tf.distribute` strategy the module builds (or fetches with `tf.distribute.get_strategy()`)."""

    cls: str  # "MirroredStrategy", "TPUStrategy", ...; "get_strategy" for whatever strategy is in scope
    call: cst.Call
    stmt: StmtInfo
    var: str | None  # the name it is bound to (`strategy`, `self.strategy`), None when not bound
    one_device: bool = False  # `MirroredStrategy(devices=["/gpu:0"])`: one replica

    @property
    def replicas(self) -> str:
        """"one", "many", or "unknown" (`get_strategy()`: the default strategy outside every scope)."""
        if self.cls == "get_strategy":
            return "unknown"
        return "one" if self.cls in _ONE_REPLICA or self.one_device else "many"


@dataclass(eq=False)
class StrategyScope:
    """A `with <strategy>.scope():` block."""

    with_info: WithInfo
    receiver: str  # as written: "strategy", "self.strategy", "tf.distribute.get_strategy()"
    strategies: list[Strategy]  # what the receiver can be; empty when the module does not build it (a parameter)


@dataclass(frozen=True, eq=False)
class Context:
    """What is in force at a statement: the dtype policy (None: nothing set, Keras' float32 default), the strategy
    (the enclosing scope's, else the one strategy the module builds; None when there is none), and whether the
    statement runs inside that strategy's `scope()`."""

    policy: PolicyInForce | None
    strategy: Strategy | None
    in_scope: bool
    scope: StrategyScope | None = None

    @property
    def policy_name(self) -> str | None:
        return self.policy.name if self.policy is not None else None


@dataclass(eq=False)
class ModelRecord:
    """A model name in one region: the assignment that builds it (when this region has one) and its events."""

    name: str
    region: "Region"
    built: Def | None
    events: list["Event"]
    context: Context  # at the build; at the first event when the build is not in this region


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
        self.strategies: list[Strategy] = []
        self.strategy_scopes: list[StrategyScope] = []
        self._strategy_by_call: dict[int, Strategy] = {}
        self._callers: dict[int, list[tuple[StmtInfo, bool]]] | None = None  # id(FuncInfo) -> (stmt, is a call)
        self._placed: list[tuple[PolicySetting, StmtInfo]] | None = None
        self._models: list[ModelRecord] | None = None
        self._lines: dict[int, int] = {}
        self._build()
        self._scan_strategies()

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

    def assignment_chain(self, region: Region, expr: cst.BaseExpression, stmt: StmtInfo, depth: int = 4
                         ) -> list[tuple[cst.BaseExpression, StmtInfo]]:
        """`expr`, then the value each unqualified name in the chain was assigned in `region` (straight-line code),
        up to `depth` steps: `loss=xent` with `xent = CategoricalCrossentropy()` gives [(xent, ...), (call, ...)]."""
        chain = [(expr, stmt)]
        for _ in range(depth):
            cur, at = chain[-1]
            if not isinstance(cur, cst.Name) or self.index.qualify(cur) is not None:
                break
            d = self.reaching(region, cur.value, at)
            if d is None or d.kind != "assign" or d.value is None or d.stmt is None:
                break
            chain.append((d.value, d.stmt))
        return chain

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

    # ---- callers ------------------------------------------------------------------------------------------------
    def callers(self, func: FuncInfo, direct: bool = False) -> list[StmtInfo]:
        """Statements of this module that call `func` (`train_step(x)`) or, unless `direct`, hand it over
        (`strategy.run(train_step, ...)`, `tf.function(train_step)`)."""
        if self._callers is None:
            self._callers = {}
            for call, stmt in self.index.all_calls:
                for i, e in enumerate([call.func] + [a.value for a in call.args]):
                    if isinstance(e, cst.Lambda) or not isinstance(e, (cst.Name, cst.Attribute)):
                        continue
                    f = function_named(self.index, e, stmt)
                    if f is None or stmt.func is f:
                        continue
                    self._callers.setdefault(id(f), []).append((stmt, i == 0))
        return [s for s, is_call in self._callers.get(id(func), []) if is_call or not direct]

    # ---- dtype policy -------------------------------------------------------------------------------------------
    def _placements(self) -> list[tuple[PolicySetting, StmtInfo]]:
        """Each policy setting at its own statement, and at the statements that call a same-module function setting
        it (two levels up): `enable_amp()` sets the policy where it is called."""
        if self._placed is None:
            placed: list[tuple[PolicySetting, StmtInfo]] = []
            for p in dtypes_of(self.index).policy_settings:
                placed.append((p, p.stmt))
                frontier = [p.stmt.func] if p.stmt.func is not None else []
                for _ in range(2):
                    nxt = []
                    for f in frontier:
                        for c in self.callers(f, direct=True):
                            placed.append((p, c))
                            if c.func is not None:
                                nxt.append(c.func)
                    frontier = nxt
            placed.sort(key=lambda ps: ps[1].index)
            self._placed = placed
        return self._placed

    def policy_at(self, stmt: StmtInfo, depth: int = 0) -> PolicyInForce | None:
        """The global dtype policy in force when `stmt` runs; None when no setting reaches it (float32, Keras'
        default). A statement in a function sees the settings before it in that function, else what its callers see,
        else what is set before the function's `def` (made indefinite by later settings that may run first)."""
        placed = self._placements()
        if not placed or depth > 4:
            return None
        func = stmt.func
        here = [(p, s) for p, s in placed if s.func is func and s.index < stmt.index]
        if here:
            p, s = here[-1]
            return PolicyInForce(p.name, p.dtype, p, definite=_prefix(s.path, stmt.path))
        if func is None:
            return None
        callers = self.callers(func)
        if callers:
            facts = [self.policy_at(c, depth + 1) for c in callers]
            if len({(f.name, f.dtype) if f is not None else None for f in facts}) == 1:
                first = facts[0]
                if first is None or all(f is not None and f.definite for f in facts):
                    return first
                return replace(first, definite=False)
            known = [f for f in facts if f is not None]
            low = [f for f in known if f.low_precision] or known
            return replace(low[-1], definite=False)
        outer = func.stmt
        if outer is None:
            return None
        before = self.policy_at(outer, depth + 1)
        later = [(p, s) for p, s in placed if s.func is outer.func and s.index > outer.index]
        if later:
            p, _ = later[-1]
            if before is None or (before.name, before.dtype) != (p.name, p.dtype):
                return PolicyInForce(p.name, p.dtype, p, definite=False)
        return before

    # ---- distribution strategies ------------------------------------------------------------------------------
    def _scan_strategies(self) -> None:
        index = self.index
        for call, stmt in index.all_calls:
            q = self._qual(call.func) or ""
            last = _last(q)
            if ".distribute." not in q or not (last.endswith("Strategy") or last == "get_strategy"):
                continue
            devices = kwarg(call, "devices")
            if devices is None and last == "MirroredStrategy":
                pos = positional(call)
                devices = pos[0] if pos else None
            one = isinstance(devices, (cst.List, cst.Tuple)) and len(devices.elements) == 1
            strat = Strategy(last, call, stmt, _bound_target(call, stmt), one)
            self.strategies.append(strat)
            self._strategy_by_call[id(call)] = strat
        for w in index.withs:
            for item in w.node.items:
                c = item.item
                if not (isinstance(c, cst.Call) and isinstance(c.func, cst.Attribute) and c.func.attr.value == "scope"
                        and not c.args):
                    continue
                receiver = c.func.value
                found = self.strategies_of(receiver, w.stmt)
                text = _code(receiver, 60)
                if found or strategy_like(text):
                    self.strategy_scopes.append(StrategyScope(w, text, found))

    def strategies_of(self, expr: cst.BaseExpression, stmt: StmtInfo, depth: int = 0) -> list[Strategy]:
        """The strategies the module builds that `expr` can be at `stmt` (a name bound to one, `self.strategy`, the
        constructor or `get_strategy()` call itself); empty when it is none of them or not known."""
        if depth > 4:
            return []
        if isinstance(expr, cst.Call):
            found = self._strategy_by_call.get(id(expr))
            return [found] if found is not None else []
        if isinstance(expr, cst.IfExp):
            return self.strategies_of(expr.body, stmt, depth + 1) + self.strategies_of(expr.orelse, stmt, depth + 1)
        values: list[tuple[cst.BaseExpression, StmtInfo]] = []
        if isinstance(expr, cst.Name):
            values = reaching_values(self.index, expr.value, stmt) or []
        elif isinstance(expr, cst.Attribute) and isinstance(expr.value, cst.Name) and expr.value.value == "self":
            cls = _class_of(stmt.func)
            if cls is not None:
                values = [(d.value, d.stmt) for d in cls.self_attrs.get(expr.attr.value, [])
                          if d.value is not None and d.stmt is not None]
        out: list[Strategy] = []
        for v, s in values:
            for st in self.strategies_of(v, s, depth + 1):
                if st not in out:
                    out.append(st)
        return out

    def scope_at(self, stmt: StmtInfo, depth: int = 0) -> StrategyScope | None:
        """The `with strategy.scope():` block `stmt` runs in: one enclosing it, or, for a statement in a function,
        one enclosing every call of that function."""
        if not self.strategy_scopes:
            return None
        for sc in reversed(self.strategy_scopes):
            if id(sc.with_info.node.body) in stmt.path:
                return sc
        if stmt.func is None or depth > 3:
            return None
        callers = self.callers(stmt.func)
        scopes = [self.scope_at(c, depth + 1) for c in callers]
        if scopes and all(sc is not None for sc in scopes):
            return scopes[0]
        return None

    def strategy_at(self, stmt: StmtInfo) -> tuple[Strategy | None, StrategyScope | None]:
        """The strategy in force at `stmt` and the scope block it runs in (None when outside every scope): the
        scope's strategy, else the one strategy the module builds (the last one built before `stmt` in the same
        region when there are several)."""
        scope = self.scope_at(stmt)
        if scope is not None:
            if len(scope.strategies) == 1:
                return scope.strategies[0], scope
            many = [s for s in scope.strategies if s.replicas == "many"]
            return (many[0] if many else scope.strategies[0] if scope.strategies else None), scope
        built = [s for s in self.strategies if s.cls != "get_strategy"]
        if len(built) == 1:
            return built[0], None
        before = [s for s in built if s.stmt.func is stmt.func and s.stmt.index < stmt.index]
        return (before[-1] if before else None), None

    # ---- what is in force where -----------------------------------------------------------------------------------
    def context_at(self, stmt: StmtInfo) -> Context:
        strategy, scope = self.strategy_at(stmt)
        return Context(self.policy_at(stmt), strategy, scope is not None, scope)

    def event_context(self, event: Event) -> Context:
        """The policy and strategy in force at a compile / fit / evaluate call."""
        return self.context_at(event.stmt)

    def binding(self, name: str, stmt: StmtInfo) -> Def | None:
        """The assignment a model name refers to at `stmt`: the one reaching it in its region, else the only
        assignment of that name in an enclosing region (a module-level model used in a training step)."""
        region = self._region(stmt.func)
        d = self.reaching(region, name, stmt)
        if d is not None:
            return d if d.kind == "assign" else None
        if region.defs.get(name):
            # one assignment before `stmt`, in a block that does not enclose it (`with strategy.scope(): model = ...`)
            defs = region.defs[name]
            if len(defs) == 1 and defs[0].kind == "assign" and defs[0].stmt is not None and defs[0].index < stmt.index:
                return defs[0]
            return None  # bound in this region but not provably (a parameter, several assignments)
        f = stmt.func.parent if stmt.func is not None else None
        while True:
            defs = (f.defs if f is not None else self.index.module_defs).get(name, [])
            if defs:
                return defs[0] if len(defs) == 1 and defs[0].kind == "assign" and defs[0].stmt is not None else None
            if f is None or stmt.func is None:
                return None
            f = f.parent

    def model_context(self, name: str, stmt: StmtInfo) -> Context | None:
        """What was in force where the model `name` (as seen from `stmt`) was built; None when its build is not
        provable. The policy at the build decides its layers' dtypes (Keras reads the global policy in each layer's
        constructor)."""
        d = self.binding(name, stmt)
        if d is None or d.stmt is None or not isinstance(d.value, cst.Call) or not self.is_model_build(d.value, d.stmt):
            return None
        return self.context_at(d.stmt)

    def is_model_build(self, call: cst.Call, stmt: StmtInfo, depth: int = 0) -> bool:
        """`Sequential(...)`, `Model(inputs, outputs)`, `keras.applications.X(...)`, a same-module `keras.Model` /
        `nn.Module` subclass, or a same-module function returning one of these."""
        q = self._qual(call.func)
        last = _last(q)
        if q is not None:
            if self.is_keras(q) and (last in ("Sequential", "Model", "Functional") or ".applications." in q):
                return True
            return q.startswith(_TORCH_NN) and last == "Sequential"
        if isinstance(call.func, cst.Name):
            cls = self.index.classes.get(call.func.value)
            if cls is not None:
                return any(self.is_keras(b) or b.startswith("torch.nn.") for b in cls.bases)
        fn = function_named(self.index, call.func, stmt)
        if fn is None or depth > 2 or not fn.returns:
            return False
        region = self._region(fn)
        for expr, rstmt in fn.returns:
            value: cst.BaseExpression | None = expr
            at = rstmt
            if isinstance(expr, cst.Name):
                d = self.reaching(region, expr.value, rstmt)
                value, at = (d.value, d.stmt) if d is not None and d.stmt is not None else (None, rstmt)
            if not (isinstance(value, cst.Call) and self.is_model_build(value, at, depth + 1)):
                return False
        return True

    def models(self) -> list[ModelRecord]:
        """Every model of the module: names bound to a model build, and names with compile/fit/... events, per
        region, with what was in force at the build."""
        if self._models is not None:
            return self._models
        out: list[ModelRecord] = []
        for region in sorted(self.regions.values(), key=lambda r: r.stmts[0].index if r.stmts else 0):
            names: dict[str, list[Event]] = {}
            for ev in region.events:
                names.setdefault(ev.model, []).append(ev)
            for name, defs in region.defs.items():
                if any(d.kind == "assign" and isinstance(d.value, cst.Call) and d.stmt is not None
                       and self.is_model_build(d.value, d.stmt) for d in defs):
                    names.setdefault(name, [])
            for name, events in names.items():
                built: Def | None = None
                if events:
                    built = self.binding(name, events[0].stmt)
                    if built is not None and built.stmt is not None and built.stmt.func is not region.func:
                        built = None
                else:
                    builds = [d for d in region.defs.get(name, []) if d.kind == "assign" and
                              isinstance(d.value, cst.Call) and d.stmt is not None]
                    built = builds[-1] if builds else None
                if built is None and not events:
                    continue
                if built is not None and not (isinstance(built.value, cst.Call) and built.stmt is not None
                                              and self.is_model_build(built.value, built.stmt)) and not events:
                    continue
                at = built.stmt if built is not None and built.stmt is not None else events[0].stmt
                out.append(ModelRecord(name, region, built, events, self.context_at(at)))
        out.sort(key=lambda m: (m.built or m.events[0]).stmt.index)  # type: ignore[union-attr]
        self._models = out
        return out

    def line_of(self, node: cst.CSTNode) -> int:
        """The 1-based line of a node (for messages and tests), from one codegen pass over the facts' nodes."""
        if id(node) not in self._lines:
            from losslint.positions import node_ranges

            wanted: list[cst.CSTNode] = [node]
            wanted += [p.call for p in dtypes_of(self.index).policy_settings]
            wanted += [s.call for s in self.strategies] + [sc.with_info.node for sc in self.strategy_scopes]
            for key, (start, _end) in node_ranges(self.index.module, wanted).items():
                self._lines[key] = start[0]
        return self._lines.get(id(node), 0)

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
        if kind == "act:linear" and prev is not None:
            # the identity: `Activation("linear", dtype="float32")` after a softmax only casts it (the
            # mixed-precision guide's float32 output), the output stays a softmax
            return prev
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
                # an `nn.Sequential` bound to an attention-like name scores (B, T, k) inputs: its Softmax(dim=1)
                # runs over the sequence axis T, not the last one
                seq = not _attention_like(_bound_target(call, stmt) or "")
                for el in items:
                    el_lay = self.layer(el, None, None, seq=seq) if isinstance(el, cst.Call) else None
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
        expr = arg(event.call, "loss", 1)
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


def _attention_like(name: str) -> bool:
    low = name.rsplit(".", 1)[-1].lower()
    return any(w in low for w in ("attention", "attn", "pool", "score", "weight", "gate"))


def strategy_like(text: str) -> bool:
    """A receiver whose name says it is a distribution strategy (`strategy`, `self._strategy`, `dist_strategy`)."""
    low = text.lower()
    return "strateg" in low or "distribut" in low


def _bound_target(call: cst.Call, stmt: StmtInfo) -> str | None:
    """The name (or `self.<attr>`) a call is assigned to in its statement: `strategy = tf.distribute...()`,
    `strategy = A() if multi else B()`."""
    node = stmt.node
    if not isinstance(node, cst.SimpleStatementLine):
        return None
    for small in node.body:
        if isinstance(small, cst.Assign) and len(small.targets) == 1:
            target, value = small.targets[0].target, small.value
        elif isinstance(small, cst.AnnAssign) and small.value is not None:
            target, value = small.target, small.value
        else:
            continue
        if value is call or (isinstance(value, cst.IfExp) and call in (value.body, value.orelse)):
            return dotted_name(target)
    return None


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


__all__ = ["EVALUATION", "Context", "Event", "INFERENCE", "LossInfo", "ModelFlow", "ModelRecord", "Output",
           "PolicyInForce", "Region", "Strategy", "StrategyScope", "TRAINING", "first_input", "model_flow",
           "read_only_use", "strategy_like"]


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

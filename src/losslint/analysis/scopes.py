"""Which code is a loss: the scopes numeric rules look inside (see the top of RULES.md).

A scope is a function (a loss passed to compile, a Loss class's `call`/`forward`, a `(y_true, y_pred)` function, a
loss-named function, a `jax.grad` target, a public function of a losses module, or a same-module helper one of those
calls), a `GradientTape` block, or the module-level / loop statements whose values reach `minimize(...)` or
`.backward()`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import PurePath

import libcst as cst

from losslint.analysis.calls import arg
from losslint.analysis.index import FuncInfo, ModuleIndex, StmtInfo, function_named
from losslint.analysis.names import dotted_name, names_in

TRUE_NAMES = frozenset({"y_true", "ytrue", "labels", "label", "target", "targets", "y", "gt", "ground_truth",
                        "truth", "true", "y_gt", "onehot_labels", "one_hot_labels"})
PRED_NAMES = frozenset({"y_pred", "ypred", "pred", "preds", "prediction", "predictions", "output", "outputs",
                        "y_hat", "yhat", "probs", "prob", "probabilities", "proba", "p", "q", "input", "inputs",
                        "y_prob", "y_probs", "pred_prob", "pred_probs"})
LOGIT_NAMES = frozenset({"logits", "logit", "y_logits", "scores", "pred_logits"})
MASK_NAMES = frozenset({"mask", "masks", "pos_mask", "neg_mask", "valid_mask", "weights_mask", "padding_mask"})

_LOSS_WORDS = ("loss", "xent", "nll", "dice", "crossentropy", "cross_entropy", "objective", "focal", "jaccard",
               "tversky", "hinge", "contrastive", "triplet", "kld", "kl_div", "divergence", "elbo", "criterion", "cost", "ntxent", "infonce", "nce")
_LOSS_NAME_RE = re.compile(r"(?:^|_)(?:" + "|".join(_LOSS_WORDS) + r")(?:$|_|es$|s$)")
_CAMEL_RE = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_LOSS_MODULE_RE = re.compile(r"(?:^|_)(?:loss|losses|cost|costs|objective|objectives|criterion|criterions)$")

# Strength order: an explicit use as a loss beats a naming convention, which beats being a helper.
KIND_STRENGTH = {
    "compile": 9, "loss-class": 9, "minimize": 9, "backward": 9, "grad-target": 9, "gradient-tape": 8,
    "signature": 6, "loss-name": 5, "losses-module": 4, "helper": 2,
}


@dataclass(eq=False)
class Scope:
    kind: str
    description: str
    func: FuncInfo | None = None
    # For keras-style losses: which positional parameter is y_true / y_pred.
    param_roles: dict[str, str] = field(default_factory=dict)

    @property
    def strength(self) -> int:
        return KIND_STRENGTH.get(self.kind, 0)


def snake(name: str) -> str:
    return _CAMEL_RE.sub("_", name).lower()


def is_loss_name(name: str) -> bool:
    return bool(_LOSS_NAME_RE.search(snake(name)))


def _is_loss_base(qualified: str) -> bool:
    q = qualified.lower()
    return q.endswith("losses.loss") or q.endswith(".loss._loss") or q.endswith("nn.modules.loss._loss") \
        or q.endswith("losses.lossfunctionwrapper") or q in ("loss", "_loss")


def _is_module_base(qualified: str) -> bool:
    return qualified.endswith("nn.Module") or qualified in ("Module", "nn.Module") or qualified.endswith(".Layer")


class ScopeMap:
    """Computes every loss scope of a module once; the engine asks it which scope a node opens."""

    def __init__(self, index: ModuleIndex) -> None:
        self.index = index
        self.by_func: dict[int, Scope] = {}  # id(FunctionDef/Lambda) -> scope
        self.by_stmt: dict[int, Scope] = {}  # id(statement) -> scope (minimize/backward slices, tape blocks)
        self.by_with: dict[int, Scope] = {}
        self._find()

    # ---- public ----------------------------------------------------------------------------------------------
    def scope_of_func(self, func: FuncInfo | None) -> Scope | None:
        return self.by_func.get(id(func.node)) if func is not None else None

    def scopes(self) -> list[Scope]:
        return list(self.by_func.values()) + list({id(s): s for s in self.by_stmt.values()}.values()) \
            + list(self.by_with.values())

    # ---- discovery -------------------------------------------------------------------------------------------
    def _mark(self, func: FuncInfo | None, scope: Scope) -> None:
        if func is None:
            return
        scope.func = func
        old = self.by_func.get(id(func.node))
        if old is None or scope.strength > old.strength:
            if old is not None and not scope.param_roles:
                scope.param_roles = old.param_roles
            self.by_func[id(func.node)] = scope
        elif scope.param_roles and not old.param_roles:
            old.param_roles = scope.param_roles

    def _find(self) -> None:
        index = self.index
        for func in index.functions:
            if isinstance(func.node, cst.Lambda):
                continue
            self._by_convention(func)
        for cls in index.classes.values():
            self._loss_class(cls)
            self._lightning_step(cls)
        for call, stmt in index.all_calls:
            self._from_call(call, stmt)
        for w in index.withs:
            if any(op.endswith("GradientTape") for op in w.context_ops):
                line_hint = "GradientTape block"
                if w.stmt.func is not None:
                    line_hint += f" in `{w.stmt.func.qualname}`"
                self.by_with[id(w.node)] = Scope("gradient-tape", line_hint)
        self._helpers()

    def _by_convention(self, func: FuncInfo) -> None:
        names = [p.name for p in func.params if p.position >= 0]
        roles = _keras_roles(names)
        if roles:
            self._mark(func, Scope("signature", f"loss-style function `{func.qualname}` ({', '.join(names[:2])})",
                                   param_roles=roles))
        if is_loss_name(func.name) and not func.name.startswith("test"):
            self._mark(func, Scope("loss-name", f"loss-named function `{func.qualname}`"))
        stem = _losses_module(self.index.path)
        if stem and not func.name.startswith("_") and func.parent is None:
            if func.cls is None or func.name in ("call", "forward", "__call__"):
                self._mark(func, Scope("losses-module", f"public function `{func.qualname}` of losses module `{stem}`"))
        for dec in func.decorators:
            if dec.endswith("jax.grad") or dec.endswith("value_and_grad"):
                self._mark(func, Scope("grad-target", f"`{func.qualname}` (differentiated by {dec.rsplit('.', 1)[-1]})"))

    def _loss_class(self, cls) -> None:  # type: ignore[no-untyped-def]
        is_loss = any(_is_loss_base(b) for b in cls.bases)
        is_module = any(_is_module_base(b) for b in cls.bases)
        if not (is_loss or (is_module and is_loss_name(cls.name))):
            return
        for mname in ("call", "forward", "__call__"):
            m = cls.methods.get(mname)
            if m is None:
                continue
            names = [p.name for p in m.params if p.position >= 0]
            roles: dict[str, str] = {}
            if len(names) >= 2:
                if mname == "forward":
                    roles = {names[0]: "y_pred", names[1]: "y_true"}
                else:
                    roles = {names[0]: "y_true", names[1]: "y_pred"}
                roles.update(_keras_roles(names))
            self._mark(m, Scope("loss-class", f"`{mname}` of loss class `{cls.name}`", param_roles=roles))

    def _lightning_step(self, cls) -> None:  # type: ignore[no-untyped-def]
        """A LightningModule's `training_step` returns the loss Lightning calls `.backward()` on."""
        if not any(b.endswith("LightningModule") for b in cls.bases):
            return
        m = cls.methods.get("training_step")
        if m is None:
            return
        scope = Scope("backward", f"value `{cls.name}.training_step` returns (Lightning calls `.backward()` on it)")
        for expr, stmt in m.returns:
            if id(stmt.node) not in self.by_stmt:
                self.by_stmt[id(stmt.node)] = scope  # `return F.nll_loss(torch.log(p), y)`: the return itself
            self._slice(expr, stmt, scope)

    def _loss_functions_of(self, expr: cst.BaseExpression, stmt: StmtInfo, depth: int = 0) -> list[FuncInfo]:
        """Functions a `loss=` argument stands for: a function, a factory call returning one, a dict/list of them."""
        if depth > 3:
            return []
        if isinstance(expr, (cst.List, cst.Tuple, cst.Set)):
            return [f for el in expr.elements for f in self._loss_functions_of(el.value, stmt, depth + 1)]
        if isinstance(expr, cst.Dict):
            return [f for el in expr.elements if isinstance(el, cst.DictElement)
                    for f in self._loss_functions_of(el.value, stmt, depth + 1)]
        if isinstance(expr, cst.Call):
            factory = function_named(self.index, expr.func, stmt)
            out: list[FuncInfo] = []
            if factory is not None:
                for ret, rstmt in factory.returns:
                    out.extend(self._loss_functions_of(ret, rstmt, depth + 1))
            cls = self.index.classes.get(expr.func.value) if isinstance(expr.func, cst.Name) else None
            if cls is not None:
                for mname in ("call", "forward", "__call__"):
                    if mname in cls.methods:
                        out.append(cls.methods[mname])
            return out
        if isinstance(expr, cst.Name) and stmt.func is not None:
            # a local variable holding a loss function: follow its assignments
            f = function_named(self.index, expr, stmt)
            if f is not None:
                return [f]
            for d in stmt.func.defs.get(expr.value, []):
                if d.value is not None and d.stmt is not None:
                    return self._loss_functions_of(d.value, d.stmt, depth + 1)
        f = function_named(self.index, expr, stmt)
        if f is None and isinstance(expr, cst.Name):
            for d in self.index.module_defs.get(expr.value, []):
                if d.value is not None and d.stmt is not None:
                    return self._loss_functions_of(d.value, d.stmt, depth + 1)
        return [f] if f is not None else []

    def _from_call(self, call: cst.Call, stmt: StmtInfo) -> None:
        func = call.func
        attr = func.attr.value if isinstance(func, cst.Attribute) else (func.value if isinstance(func, cst.Name)
                                                                        else None)
        if attr is None:
            return
        qualified = self.index.qualify(func) or ""
        if attr == "compile" and isinstance(func, cst.Attribute):
            loss_arg = arg(call, "loss", 1)
            if loss_arg is not None:
                for f in self._loss_functions_of(loss_arg, stmt):
                    names = [p.name for p in f.params if p.position >= 0]
                    roles = {names[0]: "y_true", names[1]: "y_pred"} if len(names) >= 2 else {}
                    self._mark(f, Scope("compile", f"loss function `{f.qualname}` (passed to compile)",
                                        param_roles=roles))
        elif attr in ("LossFunctionWrapper",) or qualified.endswith("losses.LossFunctionWrapper"):
            target = arg(call, "fn", 0)
            if target is not None:
                for f in self._loss_functions_of(target, stmt):
                    self._mark(f, Scope("compile", f"loss function `{f.qualname}` (wrapped as a Keras loss)"))
        elif attr == "minimize" and isinstance(func, cst.Attribute):
            target = arg(call, "loss", 0)
            if target is not None:
                self._slice(target, stmt, Scope("minimize", "value passed to minimize()"))
        elif attr in ("backward", "manual_backward") and isinstance(func, cst.Attribute):
            if qualified.startswith("torch.autograd"):
                target = arg(call, "tensors", 0)
            elif call.args:
                target = arg(call, "loss", 0)  # accelerator.backward(loss), fabric.backward(loss)
            else:
                target = func.value
                # scaler.scale(loss).backward()
                if isinstance(target, cst.Call) and isinstance(target.func, cst.Attribute) \
                        and target.func.attr.value == "scale" and target.args:
                    target = target.args[0].value
            if target is not None:
                self._slice(target, stmt, Scope("backward", "value `.backward()` is called on"))
        elif attr == "gradient" and isinstance(func, cst.Attribute):
            target = arg(call, "target", 0)
            if target is not None:
                self._slice(target, stmt, Scope("gradient-tape", "value differentiated by tape.gradient()"))
        elif qualified in ("jax.grad", "jax.value_and_grad") or qualified.endswith(".value_and_grad") \
                or qualified.endswith("jax.grad"):
            target = arg(call, "fun", 0)
            if target is not None:
                for f in self._loss_functions_of(target, stmt):
                    self._mark(f, Scope("grad-target", f"`{f.qualname}` (differentiated by "
                                                       f"{qualified.rsplit('.', 1)[-1]})"))

    def _slice(self, target: cst.BaseExpression, stmt: StmtInfo, scope: Scope) -> None:
        """Mark the statements whose values flow into `target` (a backward slice through assignments)."""
        if isinstance(target, cst.Lambda):
            f = self.index.func_of_node.get(id(target))
            if f is not None:
                self._mark(f, scope)
            return
        if isinstance(target, cst.Call):
            f = function_named(self.index, target.func, stmt)
            if f is not None:
                self._mark(f, Scope(scope.kind, f"`{f.qualname}` ({scope.description})"))
        names = names_in(target)
        seen: set[str] = set()
        work = list(names)
        defs_table = stmt.func.defs if stmt.func is not None else self.index.module_defs
        while work:
            name = work.pop()
            if name in seen or len(seen) > 200:
                continue
            seen.add(name)
            for d in defs_table.get(name, []):
                if d.stmt is None or d.value is None or d.stmt.index > stmt.index:
                    continue
                if id(d.stmt.node) not in self.by_stmt:
                    self.by_stmt[id(d.stmt.node)] = scope
                value = d.value
                # A call of something that is not a framework op (a model, a criterion, a data loader) ends the
                # slice: its inputs are data, not loss arithmetic.
                if isinstance(value, cst.Call) and self.index.op_of(value) is None:
                    f = function_named(self.index, value.func, d.stmt)
                    if f is not None:
                        self._mark(f, Scope(scope.kind, f"`{f.qualname}` ({scope.description})"))
                    continue
                work.extend(names_in(value))

    def _helpers(self) -> None:
        """Same-module functions called from a loss scope are scopes too (transitively, a few levels deep)."""
        frontier = list(self.by_func.values())
        for _ in range(4):
            new: list[Scope] = []
            for scope in frontier:
                func = scope.func
                if func is None:
                    continue
                for call, stmt in func.calls:
                    callee = function_named(self.index, call.func, stmt)
                    if callee is None or callee is func or id(callee.node) in self.by_func:
                        continue
                    if not callee.returns:
                        continue  # returns nothing: called for a side effect (statistics, checks), not loss arithmetic
                    s = Scope("helper", f"helper `{callee.qualname}` called from {scope.description}")
                    self._mark(callee, s)
                    new.append(s)
            frontier = new
            if not frontier:
                break


def _losses_module(path: str) -> str:
    """The name that makes a file a losses module: its own (`losses.py`) or its package's (`optax/losses/_ranking.py`,
    `kornia/losses/dice.py`), else ""."""
    if not path:
        return ""
    p = PurePath(path)
    for name in (p.stem, p.parent.name):
        if name and _LOSS_MODULE_RE.search(snake(name)) and not p.stem.endswith("_test") \
                and not p.stem.startswith("test_"):
            return name if name == p.stem else f"{name}/{p.stem}"
    return ""


def _keras_roles(names: list[str]) -> dict[str, str]:
    """Roles for a `(y_true, y_pred)`-style signature, if the first two parameters look like one."""
    if len(names) < 2:
        return {}
    a, b = names[0].lower(), names[1].lower()
    if a in TRUE_NAMES and (b in PRED_NAMES or b in LOGIT_NAMES):
        return {names[0]: "y_true", names[1]: "y_logits" if b in LOGIT_NAMES else "y_pred"}
    if (a in PRED_NAMES or a in LOGIT_NAMES) and b in TRUE_NAMES and a not in ("y", "p", "q"):
        return {names[0]: "y_logits" if a in LOGIT_NAMES else "y_pred", names[1]: "y_true"}
    return {}


__all__ = ["Scope", "ScopeMap", "is_loss_name", "dotted_name", "TRUE_NAMES", "PRED_NAMES", "LOGIT_NAMES",
           "MASK_NAMES"]

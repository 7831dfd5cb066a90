"""Build a harness module: the loss function alone, with only what it needs from its module.

From a parsed module and a target function, collect the module-level imports, constants (simple assignments whose
values run no user code), same-module helper functions and classes the function reads, transitively, and emit them in
their original order. Imports of anything but the standard library and the frameworks, relative imports, star imports
and constants computed by user code make the function "not isolable" (an `Isolation` error with the reason). The
user's module is never imported: the harness holds copies of the statements it needs.

A model the loss calls but the module never binds (`probs = model.apply(params, x)`, `net(x)`) does not stop it: the
harness's call names it in "stand_ins" and the runner binds it to a stand-in returning its data argument
(`model_stand_ins`).

Also here: the synthetic-input spec (which parameter is labels, probabilities, logits, a mask, a parameter matrix
`x @ params` or a dict of them (`params["w"]`: a (d, d) matrix where multiplied by, else a (d,) vector), a training
step's `model` (the identity stands in) or unread `opt` (None), an undefined model's input (its output: logits when an
activation follows, else probabilities) or its own parameters (None); the label kind; the shape), inferred from the
parameters' roles and names and from the code; and which framework (TensorFlow/Keras, PyTorch, JAX) a harness's
imports name (`frameworks_of`).
"""

from __future__ import annotations

import builtins
import re
import sys
from dataclasses import dataclass, field

import libcst as cst

TF_ROOTS = frozenset({"tensorflow", "keras", "tf_keras"})
TORCH_ROOTS = frozenset({"torch", "torchvision"})
JAX_ROOTS = frozenset({"jax", "jaxlib", "flax", "optax", "haiku", "equinox"})
# the frameworks a harness runs under (runner.py --framework F), by the top-level modules that mark their code
FRAMEWORK_ROOTS = {"tensorflow": TF_ROOTS, "torch": TORCH_ROOTS, "jax": JAX_ROOTS}
OTHER_FRAMEWORKS = {"torch": "PyTorch", "torchvision": "PyTorch", "jax": "JAX", "jaxlib": "JAX", "flax": "JAX",
                    "optax": "JAX", "haiku": "JAX", "equinox": "JAX", "mxnet": "MXNet", "paddle": "PaddlePaddle"}
_ALLOWED_ROOTS = TF_ROOTS | {"numpy", "scipy", "tensorflow_probability"} | set(getattr(sys, "stdlib_module_names", ()))
_SAFE_BUILTIN_CALLS = frozenset({"float", "int", "bool", "str", "tuple", "list", "dict", "set", "frozenset", "range",
                                 "len", "abs", "min", "max", "round", "pow", "sum", "sorted", "zip", "enumerate",
                                 "reversed", "complex", "slice", "map", "filter", "any", "all"})
_BUILTINS = frozenset(dir(builtins)) | {"__name__", "__file__", "__doc__"}


class Isolation(Exception):
    """The function cannot be isolated into a harness module; the message says why."""


@dataclass
class Harness:
    source: str  # the harness module text
    call: dict  # how the runner gets the loss: {"kind": "function"|"method"|"factory", ...}
    func: cst.FunctionDef
    params: list[cst.Param]  # positional parameters the loss is called with (self excluded)
    required: list[str]  # positional parameters without a default
    roots: set[str] = field(default_factory=set)  # top-level modules the harness imports


# ---- names ---------------------------------------------------------------------------------------------------
class _Names(cst.CSTVisitor):
    """Names a node reads, and names it binds anywhere inside (parameters, assignments, loop/with/comprehension
    targets, nested defs, imports): the free names are read - bound."""

    def __init__(self) -> None:
        self.read: list[str] = []
        self.bound: set[str] = set()

    def visit_Name(self, node: cst.Name) -> None:
        self.read.append(node.value)

    def visit_Attribute(self, node: cst.Attribute) -> bool:
        node.value.visit(self)
        return False

    def visit_Arg(self, node: cst.Arg) -> bool:
        node.value.visit(self)
        return False

    def visit_Param(self, node: cst.Param) -> bool:
        self.bound.add(node.name.value)
        if node.default is not None:
            node.default.visit(self)
        if node.annotation is not None:
            node.annotation.visit(self)
        return False

    def _target(self, node: cst.CSTNode) -> None:
        if isinstance(node, cst.Name):
            self.bound.add(node.value)
        elif isinstance(node, (cst.Tuple, cst.List)):
            for el in node.elements:
                self._target(el.value)
        elif isinstance(node, cst.StarredElement):
            self._target(node.value)

    def visit_AssignTarget(self, node: cst.AssignTarget) -> None:
        self._target(node.target)

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        self._target(node.target)

    def visit_AugAssign(self, node: cst.AugAssign) -> None:
        self._target(node.target)

    def visit_NamedExpr(self, node: cst.NamedExpr) -> None:
        self._target(node.target)

    def visit_For(self, node: cst.For) -> None:
        self._target(node.target)

    def visit_CompFor(self, node: cst.CompFor) -> None:
        self._target(node.target)

    def visit_AsName(self, node: cst.AsName) -> None:
        self._target(node.name)

    def visit_ExceptHandler(self, node: cst.ExceptHandler) -> None:
        if node.name is not None:
            self._target(node.name.name)

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self.bound.add(node.name.value)

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        self.bound.add(node.name.value)

    def visit_Import(self, node: cst.Import) -> bool:
        for a in node.names:
            if a.asname is not None:
                self._target(a.asname.name)
            else:
                self.bound.add(_dotted(a.name).split(".", 1)[0])
        return False

    def visit_ImportFrom(self, node: cst.ImportFrom) -> bool:
        if isinstance(node.names, cst.ImportStar):
            return False
        for a in node.names:
            self.bound.add(a.asname.name.value if a.asname is not None and isinstance(a.asname.name, cst.Name)
                           else _dotted(a.name))
        return False

    def visit_Global(self, node: cst.Global) -> None:
        for n in node.names:
            self.read.append(n.name.value)

    def visit_Nonlocal(self, node: cst.Nonlocal) -> None:
        for n in node.names:
            self.read.append(n.name.value)


def _names(node: cst.CSTNode) -> _Names:
    v = _Names()
    node.visit(v)
    return v


def free_names(node: cst.CSTNode, outer_bound: bool = True) -> list[str]:
    """Names `node` reads that nothing inside it binds (builtins excluded), in first-use order."""
    v = _names(node)
    bound = v.bound if outer_bound else set()
    if isinstance(node, (cst.FunctionDef, cst.ClassDef)):
        bound = bound - {node.name.value}  # a recursive helper reads its own name from the module
    out: list[str] = []
    for n in v.read:
        if n not in bound and n not in _BUILTINS and n not in out:
            out.append(n)
    return out


def _dotted(node: cst.BaseExpression) -> str:
    parts = []
    while isinstance(node, cst.Attribute):
        parts.append(node.attr.value)
        node = node.value
    if isinstance(node, cst.Name):
        parts.append(node.value)
    return ".".join(reversed(parts))


def frameworks_of(roots: set[str] | frozenset[str]) -> list[str]:
    """The frameworks (`tensorflow`, `torch`, `jax`) whose modules `roots` holds, in that order."""
    return [fw for fw, rs in FRAMEWORK_ROOTS.items() if roots & rs]


# ---- module-level bindings -----------------------------------------------------------------------------------
@dataclass
class _Binding:
    order: int
    kind: str  # "import" | "def" | "class" | "assign" | "future"
    code: str  # the statement text to emit (for imports: only this alias)
    node: cst.CSTNode
    module: str = ""  # for imports: the module imported from (absolute), "" for relative


def _import_bindings(stmt: cst.BaseSmallStatement, order: int, module: cst.Module) -> list[tuple[str, _Binding]]:
    out: list[tuple[str, _Binding]] = []
    if isinstance(stmt, cst.Import):
        for a in stmt.names:
            full = _dotted(a.name)
            if a.asname is not None and isinstance(a.asname.name, cst.Name):
                local = a.asname.name.value
                code = f"import {full} as {local}"
            else:
                local = full.split(".", 1)[0]
                code = f"import {full}"
            out.append((local, _Binding(order, "import", code, stmt, full)))
    elif isinstance(stmt, cst.ImportFrom):
        mod = _dotted(stmt.module) if stmt.module is not None else ""
        dots = "." * len(stmt.relative)
        if isinstance(stmt.names, cst.ImportStar):
            out.append(("*", _Binding(order, "import", f"from {dots}{mod} import *", stmt, "" if dots else mod)))
            return out
        if mod == "__future__":
            for a in stmt.names:
                out.append((f"__future__.{_dotted(a.name)}",
                            _Binding(order, "future", f"from __future__ import {_dotted(a.name)}", stmt)))
            return out
        for a in stmt.names:
            name = _dotted(a.name)
            local = a.asname.name.value if a.asname is not None and isinstance(a.asname.name, cst.Name) else name
            code = f"from {dots}{mod} import {name}" + (f" as {local}" if local != name else "")
            out.append((local, _Binding(order, "import", code, stmt, "" if dots else mod)))
    return out


def module_bindings(module: cst.Module) -> dict[str, list[_Binding]]:
    """Name -> its module-level bindings in order (imports inside a top-level `try`/`if` count too)."""
    table: dict[str, list[_Binding]] = {}
    counter = [0]

    def add(name: str, b: _Binding) -> None:
        table.setdefault(name, []).append(b)

    def visit_block(stmts) -> None:  # noqa: ANN001
        for st in stmts:
            counter[0] += 1
            order = counter[0]
            if isinstance(st, cst.SimpleStatementLine):
                for small in st.body:
                    if isinstance(small, (cst.Import, cst.ImportFrom)):
                        for name, b in _import_bindings(small, order, module):
                            add(name, b)
                    elif isinstance(small, (cst.Assign, cst.AnnAssign, cst.AugAssign)):
                        code = module.code_for_node(small).strip()
                        v = _Names()
                        if isinstance(small, cst.Assign):
                            for t in small.targets:
                                v._target(t.target)
                        elif small.value is not None or isinstance(small, cst.AugAssign):
                            v._target(small.target)
                        for name in v.bound:
                            add(name, _Binding(order, "assign", code, small))
            elif isinstance(st, cst.FunctionDef):
                add(st.name.value, _Binding(order, "def", module.code_for_node(st).strip("\n") + "\n", st))
            elif isinstance(st, cst.ClassDef):
                add(st.name.value, _Binding(order, "class", module.code_for_node(st).strip("\n") + "\n", st))
            elif isinstance(st, cst.Try):
                visit_block(st.body.body)  # `try: import x` - the `except` fallbacks are not taken
            elif isinstance(st, cst.If) and not _is_type_checking(st.test):
                visit_block(st.body.body)

    visit_block(module.body)
    return table


def _is_type_checking(test: cst.BaseExpression) -> bool:
    return _dotted(test).endswith("TYPE_CHECKING")


def _check_constant(value: cst.BaseExpression | None, name: str, allowed_names) -> None:  # noqa: ANN001
    """A module-level value may call only framework/stdlib functions and safe builtins: no user code runs."""
    if value is None:
        return

    class _Calls(cst.CSTVisitor):
        def visit_Lambda(self, node: cst.Lambda) -> bool:
            return False  # not executed when the constant is evaluated

        def visit_Call(self, node: cst.Call) -> None:
            func = node.func
            while isinstance(func, cst.Attribute):
                func = func.value
            if isinstance(func, cst.Name):
                if func.value in _SAFE_BUILTIN_CALLS or allowed_names(func.value):
                    return
                raise Isolation(f"`{name}` is computed by `{_dotted(node.func) or func.value}(...)`, which the harness "
                                f"does not run")
            # a method of a literal or of a call's result: allowed (the call itself is checked on its own)

    value.visit(_Calls())


def build_harness(module: cst.Module, target: cst.CSTNode, call: dict, params: list[cst.Param],
                  func: cst.FunctionDef) -> Harness:
    """The harness module for `target` (a top-level function, class or assignment statement of `module`)."""
    table = module_bindings(module)
    chosen: dict[tuple[int, str], _Binding] = {}
    roots: set[str] = set()
    futures = [b for k, bs in table.items() if k.startswith("__future__.") for b in bs]

    def import_allowed(b: _Binding) -> None:
        if not b.module:
            raise Isolation(f"it uses `{b.code}`, a relative import of the user's own package")
        root = b.module.split(".", 1)[0]
        if root in OTHER_FRAMEWORKS:
            roots.add(root)
        elif root not in _ALLOWED_ROOTS:
            raise Isolation(f"it uses `{b.code}`, which is not a framework or standard-library module")
        roots.add(root)

    def is_import_or_constant(name: str) -> bool:
        bs = table.get(name)
        return bool(bs) and bs[-1].kind in ("import", "assign")

    work: list[str] = []
    seen: set[str] = set()

    def need(node: cst.CSTNode) -> None:
        for n in free_names(node):
            if n not in seen:
                seen.add(n)
                work.append(n)

    top_code = module.code_for_node(target).strip("\n") + "\n"
    need(target)
    models: dict[str, StandIn] | None = None  # undefined names the loss calls as its model
    used: dict[str, StandIn] = {}
    while work:
        name = work.pop(0)
        bs = table.get(name)
        if not bs:
            if "*" in table:
                raise Isolation(f"`{name}` may come from `{table['*'][0].code}`")
            if models is None:
                scope = _module_scope_bound(module)
                models = model_stand_ins(target, func, [p.name.value for p in params],
                                         lambda n: n not in table and n not in scope)
            if name in models:
                used[name] = models[name]
                continue
            raise Isolation(f"`{name}` is not defined at module level")
        b = bs[-1]
        if b.kind == "import":
            import_allowed(b)
            chosen[(b.order, b.code)] = b
        elif b.kind in ("def", "class"):
            if b.node is target:
                continue
            chosen[(b.order, b.code)] = b
            need(b.node)
        elif b.kind == "assign":
            for a in bs:  # every module-level assignment to it, in order (`EPS = 1e-7`, `EPS *= 10`)
                if a.node is target:
                    continue
                value = getattr(a.node, "value", None)
                _check_constant(value, name, is_import_or_constant)
                chosen[(a.order, a.code)] = a
                if value is not None:
                    need(value)
                if isinstance(a.node, cst.AugAssign):
                    need(a.node.target)
    for b in chosen.values():  # a helper that reads a stood-in model must only call it too
        reads = set(used) & set(free_names(b.node)) if b.kind in ("def", "class") and used else set()
        if reads:
            uses = _model_uses(b.node, reads)
            for n in reads:
                if len(uses.rooted[n]) != len(uses.reads[n]):
                    raise Isolation(f"`{n}` is not defined at module level")
    if used:
        call = dict(call, stand_ins=[{"name": n, "as": d} for n, s in used.items() for d in s.uses])
    pieces = [b.code for b in futures]
    target_order = None
    for b in [b for bs in table.values() for b in bs]:
        if b.node is target:
            target_order = b.order
    items = sorted(chosen.values(), key=lambda b: b.order)
    placed = False
    for b in items:
        if not placed and target_order is not None and b.order > target_order:
            pieces.append(top_code)
            placed = True
        pieces.append(b.code if b.code.endswith("\n") else b.code + "\n")
    if not placed:
        pieces.append(top_code)
    source = "".join(p if p.endswith("\n") else p + "\n" for p in pieces)
    required = [p.name.value for p in params if p.default is None]
    return Harness(source, call, func, params, required, roots)


# ---- an undefined model: the identity stands in -------------------------------------------------------------
# A loss that calls a model the module never defines (`probs = model.apply(params, x)`, `net(x)`, `apply(params, x)`:
# built elsewhere, or a global of the training script) runs with a stand-in for it that returns its data argument
# (a `x=`/`inputs=`... keyword, else the last positional one): the model's output is then that synthetic input, and
# the parameter that feeds it takes the model output's role. Only names that read as a model, that the loss only
# calls, with a data argument that is one of its own parameters, and that nothing binds at module scope.
_MODEL_TOKENS = frozenset({"model", "net", "network", "apply", "forward", "predict", "predictor", "mlp", "cnn", "rnn",
                           "classifier", "module", "encoder"})
_NOT_MODEL_TOKENS = frozenset({"loss", "penalty", "reg", "regularizer", "regularization", "norm", "metric", "grad",
                               "grads", "aux", "criterion", "error", "helper", "kl", "entropy", "l1", "l2"})
DATA_KEYWORDS = ("x", "inputs", "input", "data", "features", "batch", "images", "obs")  # mirrored by runner.py


def model_like(name: str) -> bool:
    """`model`, `net`, `apply`, `model_apply`, `apply_fn`, `forward_fn`, `resnet`, `teacher_model`: a model's name
    (`loss_fn`, `l2_penalty`, `reg` are not)."""
    tokens = [re.sub(r"\d+$", "", t).lower() for t in re.split(r"_+|(?<=[a-z0-9])(?=[A-Z])", name) if t]
    tokens = [t for t in tokens if t]
    if not tokens or any(t in _NOT_MODEL_TOKENS for t in tokens):
        return False
    last = tokens[-1]
    if last in ("fn", "func", "function") and len(tokens) > 1:
        last = tokens[-2]
    return last in _MODEL_TOKENS or last.endswith("net")


@dataclass
class StandIn:
    name: str
    uses: list[str] = field(default_factory=list)  # "model.apply -> identity on x", one per callee and argument
    data: list[str] = field(default_factory=list)  # the loss's parameters passed as the data argument
    calls: list[cst.Call] = field(default_factory=list)


class _ModelUses(cst.CSTVisitor):
    """The reads of `names` (as expressions: not attribute or keyword names) and the calls rooted at them."""

    def __init__(self, names: set[str]) -> None:
        self.names = names
        self.reads: dict[str, list[cst.Name]] = {n: [] for n in names}
        self.rooted: dict[str, list[cst.Name]] = {n: [] for n in names}
        self.calls: dict[str, list[cst.Call]] = {n: [] for n in names}

    def visit_Attribute(self, node: cst.Attribute) -> bool:
        node.value.visit(self)
        return False

    def visit_Arg(self, node: cst.Arg) -> bool:
        node.value.visit(self)
        return False

    def visit_Call(self, node: cst.Call) -> None:
        root = node.func
        while isinstance(root, cst.Attribute):
            root = root.value
        if isinstance(root, cst.Name) and root.value in self.names:
            self.calls[root.value].append(node)
            self.rooted[root.value].append(root)

    def visit_Name(self, node: cst.Name) -> None:
        if node.value in self.names:
            self.reads[node.value].append(node)


def _model_uses(node: cst.CSTNode, names: set[str]) -> _ModelUses:
    v = _ModelUses(names)
    node.visit(v)
    return v


def data_arg(call: cst.Call) -> cst.BaseExpression | None:
    """The argument a stood-in model returns: the first `x=`/`inputs=`... keyword, else the last positional one."""
    for a in call.args:
        if a.keyword is not None and a.keyword.value in DATA_KEYWORDS:
            return a.value
    pos = [a for a in call.args if a.keyword is None and not a.star]
    return pos[-1].value if pos else None


def model_stand_ins(target: cst.CSTNode, func: cst.CSTNode, loss_params: list[str],
                    undefined) -> dict[str, StandIn]:  # noqa: ANN001
    """The names `target` reads that `undefined(name)` says nothing defines and that it uses as its model only: every
    read is a call (`model(x)`, `model.apply(params, x)`), without `*args`, whose data argument is a parameter of
    the loss `func`."""
    names = {n for n in free_names(target) if model_like(n) and undefined(n)}
    if not names:
        return {}
    uses = _model_uses(target, names)
    own = set(loss_params)
    out: dict[str, StandIn] = {}
    for n in sorted(names):
        calls = uses.calls[n]
        if not calls or len(uses.rooted[n]) != len(uses.reads[n]):
            continue  # read as a value somewhere (passed on, an attribute read): not only called
        s = StandIn(n)
        for c in calls:
            arg = data_arg(c)
            if any(a.star for a in c.args) or not isinstance(arg, cst.Name) or arg.value not in own:
                break
            desc = f"{_dotted(c.func)} -> identity on {arg.value}"
            if desc not in s.uses:
                s.uses.append(desc)
            if arg.value not in s.data:
                s.data.append(arg.value)
            s.calls.append(c)
        else:
            out[n] = s
    return out


def _module_scope_bound(module: cst.Module) -> set[str]:
    """Every name bound at module scope, in any block (`with`, `for`, `if __name__ == ...`), or declared `global`."""
    out: set[str] = set()
    for st in module.body:
        if isinstance(st, (cst.FunctionDef, cst.ClassDef)):
            out.add(st.name.value)
        else:
            out |= _names(st).bound

    class _Globals(cst.CSTVisitor):
        def visit_Global(self, node: cst.Global) -> None:
            out.update(n.name.value for n in node.names)

    module.visit(_Globals())
    return out


# ---- locating the function -----------------------------------------------------------------------------------
def positional_params(func: cst.FunctionDef | cst.Lambda, drop_self: bool) -> list[cst.Param]:
    ps = list(func.params.posonly_params) + list(func.params.params)
    if drop_self and ps and ps[0].name.value in ("self", "cls"):
        ps = ps[1:]
    return ps


def harness_for(module: cst.Module, chain: list[cst.CSTNode]) -> Harness:
    """`chain`: the nodes from the top-level statement down to the innermost function holding the fix."""
    if not chain:
        raise Isolation("the fix is not inside a function")
    top = chain[0]
    inner = chain[-1]
    if isinstance(inner, cst.Lambda):
        if isinstance(top, cst.SimpleStatementLine) and len(chain) == 2 and isinstance(top.body[0], cst.Assign) \
                and top.body[0].value is inner and len(top.body[0].targets) == 1 \
                and isinstance(top.body[0].targets[0].target, cst.Name):
            name = top.body[0].targets[0].target.value
            for small in top.body:
                if isinstance(small, cst.Assign):
                    return build_harness(module, small, {"kind": "function", "name": name},
                                         positional_params(inner, False), inner)  # type: ignore[arg-type]
        raise Isolation("the fix is inside a lambda that is not assigned to a module-level name")
    if isinstance(top, cst.ClassDef):
        if len(chain) >= 2 and isinstance(chain[1], cst.FunctionDef) and chain[1] is inner:
            method = inner.name.value  # type: ignore[union-attr]
            return build_harness(module, top, {"kind": "method", "class": top.name.value, "method": method},
                                 positional_params(inner, True), inner)  # type: ignore[arg-type]
        raise Isolation("the fix is in a function nested inside a method")
    if not isinstance(top, cst.FunctionDef):
        raise Isolation("the fix is not inside a module-level function or class")
    if inner is top:
        return build_harness(module, top, {"kind": "function", "name": top.name.value},
                             positional_params(top, False), top)
    # A nested function. Without free variables from its enclosing functions it stands alone at module level.
    assert isinstance(inner, cst.FunctionDef)
    enclosing_bound: set[str] = set()
    for outer in chain[:-1]:
        v = _names(outer)
        enclosing_bound |= v.bound
    own = _names(inner)
    closure = [n for n in free_names(inner) if n in enclosing_bound and n not in own.bound]
    if not closure:
        standalone = inner.with_changes(decorators=())
        code_module = cst.Module(body=[standalone])
        reparsed = cst.parse_module(code_module.code)
        new_top = reparsed.body[0]
        # build against the original module's bindings, with the nested function emitted as if top-level
        merged = module.with_changes(body=list(module.body) + [new_top])
        return build_harness(merged, merged.body[-1], {"kind": "function", "name": inner.name.value},
                             positional_params(new_top, False), new_top)  # type: ignore[arg-type]
    ps = top.params
    if any(p.default is None for p in list(ps.posonly_params) + list(ps.params) + list(ps.kwonly_params)):
        raise Isolation(f"`{inner.name.value}` is built inside `{top.name.value}(...)`, which needs arguments "
                        f"(it reads {', '.join(f'`{n}`' for n in closure[:3])} from there)")
    return build_harness(module, top, {"kind": "factory", "name": top.name.value},
                         positional_params(inner, False), inner)


def find_chain(module: cst.Module, ranges: dict[int, tuple[tuple[int, int], tuple[int, int]]],
               line: int, column: int) -> list[cst.CSTNode]:
    """Top-level statement -> ... -> innermost FunctionDef/Lambda containing (line, column) (1-based line)."""
    chain: list[cst.CSTNode] = []

    def contains(node: cst.CSTNode) -> bool:
        r = ranges.get(id(node))
        if r is None:
            return False
        (sl, sc), (el, ec) = r
        return (sl, sc) <= (line, column) <= (el, ec)

    for st in module.body:
        if contains(st):
            chain.append(st)
            break
    else:
        return []

    class _Find(cst.CSTVisitor):
        def on_visit(self, node: cst.CSTNode) -> bool:
            if isinstance(node, (cst.FunctionDef, cst.Lambda)) and node is not chain[0] and contains(node):
                chain.append(node)
            return True

    chain[0].visit(_Find())
    funcs = [n for n in chain if isinstance(n, (cst.FunctionDef, cst.Lambda))]
    if not funcs:
        return []
    # keep the top statement, then the nested functions in order (the visitor walks outer before inner)
    return chain


def function_nodes(module: cst.Module) -> list[cst.CSTNode]:
    """Every top-level statement and every (nested) FunctionDef/Lambda: the nodes whose ranges find_chain needs."""
    out: list[cst.CSTNode] = list(module.body)

    class _All(cst.CSTVisitor):
        def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
            out.append(node)

        def visit_Lambda(self, node: cst.Lambda) -> None:
            out.append(node)

    module.visit(_All())
    return out


def chain_by_qualname(module: cst.Module, qualname: str) -> list[cst.CSTNode]:
    """`loss`, `Cls.call`, `make_loss.loss`: the chain of nodes the name walks."""
    parts = qualname.split(".")
    chain: list[cst.CSTNode] = []
    body: list = list(module.body)
    for part in parts:
        found = None
        for st in body:
            if isinstance(st, (cst.FunctionDef, cst.ClassDef)) and st.name.value == part:
                found = st
        if found is None:
            return []
        chain.append(found)
        body = list(found.body.body) if isinstance(found.body, cst.IndentedBlock) else []
    return chain


def qualname_of(chain: list[cst.CSTNode]) -> str:
    return ".".join(n.name.value for n in chain if isinstance(n, (cst.FunctionDef, cst.ClassDef)))


# ---- synthetic inputs ----------------------------------------------------------------------------------------
TRUE_WORDS = {"y_true", "ytrue", "labels", "label", "target", "targets", "y", "gt", "ground_truth", "truth", "true",
              "y_gt", "onehot_labels", "one_hot_labels", "t"}
PRED_WORDS = {"y_pred", "ypred", "pred", "preds", "prediction", "predictions", "output", "outputs", "y_hat", "yhat",
              "probs", "prob", "probabilities", "proba", "p", "q", "input", "inputs", "y_prob", "y_probs",
              "pred_prob", "pred_probs", "x"}
LOGIT_WORDS = {"logits", "logit", "y_logits", "scores", "pred_logits", "z"}
MASK_WORDS = {"mask", "masks", "pos_mask", "neg_mask", "valid_mask", "weights_mask", "padding_mask"}
WEIGHT_WORDS = {"weights", "weight", "sample_weight", "sample_weights", "w"}

ROLE_KIND = {"y_true": "labels", "labels": "labels", "y_pred": "probs", "probs": "probs", "y_logits": "logits",
             "logits": "logits", "mask": "mask", "weights": "weights", "real": "real"}

PARAM_WORDS = {"params", "param", "parameters", "theta"}  # model parameters: a weight matrix when multiplied by
MODEL_WORDS = {"model", "net", "network", "apply_fn", "model_fn", "forward_fn"}  # called: the identity stands in
# a training step's other arguments: None when the step does not read them
STEP_WORDS = {"opt", "optim", "optimizer", "optimiser", "scaler", "step", "global_step", "epoch", "batch_idx",
              "batch_index", "device", "scheduler", "lr_scheduler"}

_AXIS_RE = re.compile(r"\b(?:axis|dim)\s*=\s*(\(|\[)?\s*(-?\d+(?:\s*,\s*-?\d+)*)")
# PyTorch's criteria that take only class indices (`F.nll_loss`, `nn.NLLLoss()`; `F.cross_entropy` also takes
# probabilities, the one-hot labels), optax's integer labels
_CLASS_INDEX_RE = re.compile(r"\.nll_loss\(|\bnllloss\(|integer_labels")


def _matmul_operand(name: str, text: str) -> bool:
    """Is `name` multiplied as a matrix in `text` (`x @ params`, `jnp.dot(x, params)`, `matmul(params, x)`)?"""
    n = re.escape(name)
    return bool(re.search(rf"@\s*{n}\b|\b{n}\s*@|\b(?:matmul|dot|mm)\([^()]*\b{n}\b", text))


def infer_inputs(harness_source: str, func: cst.FunctionDef | cst.Lambda, params: list[cst.Param],
                 roles: dict[str, str] | tuple[str, ...] | None) -> dict:
    """The synthetic-input spec the runner expands: per parameter its kind and whether its gradient is taken,
    the label kind (onehot | sparse | binary | regression) and the shape."""
    names = [p.name.value for p in params]
    required = [p for p in params if p.default is None]
    if isinstance(roles, tuple):
        role_of = dict(zip(names, roles))
    else:
        role_of = dict(roles or {})
    kinds: list[tuple[str, str]] = []
    body = func.body
    body_code = cst.Module(body=[]).code_for_node(body)
    body_reads = set(_names(body).read)
    # an undefined model the loss calls (bound to a stand-in by the harness): what feeds it
    stand = _harness_stand_ins(harness_source, func, names)
    model_data = {d for s in stand.values() for d in s.data}
    model_only = _model_only_params(body, stand, names)
    dicts: dict[str, dict[str, bool]] = {}  # `params["w"]`: a dict of arrays, key -> used as a matrix
    for i, p in enumerate(required):
        n = p.name.value
        low = n.lower()
        role = role_of.get(n)
        keys = _string_keys(body, n) if role is None and (low in PARAM_WORDS or "param" in low) else None
        if role is None:
            if n in model_only:
                role = "unused"  # the model's own parameters (`model.apply(params, x)`): the stand-in ignores them
            elif n in model_data:
                role = "y_pred"  # the stood-in model's input is its output
            elif keys:
                role = "params"
                dicts[n] = keys
            elif low in TRUE_WORDS:
                role = "y_true"
            elif low in LOGIT_WORDS or "logit" in low:
                role = "y_logits"
            elif low in PRED_WORDS or "pred" in low or "prob" in low:
                role = "y_pred"
            elif low in MASK_WORDS or "mask" in low:
                role = "mask"
            elif low in WEIGHT_WORDS:
                role = "weights"
            elif low in PARAM_WORDS and _matmul_operand(n, harness_source):
                role = "params"  # `loss_fn(params, x, labels)` with `x @ params`: JAX's convention
            elif len(required) == 2 and i < 2:
                role = ("y_true", "y_pred")[i]  # the Keras convention
            elif low in MODEL_WORDS and re.search(rf"\b{re.escape(n)}\s*\(", body_code):
                role = "model"  # a training step's `model(x)`: the identity, so `x` is the model's output
            elif low in STEP_WORDS and n not in body_reads:
                role = "unused"  # a training step's `opt` it never touches: None
            elif low in ("opt", "optim", "optimizer", "optimiser") and only_called(body, n, methods_only=True):
                role = "optimizer"  # `opt.apply_gradients(...)`, `optimizer.step()`: a stand-in that does nothing
        if role is None:
            raise Isolation(f"no synthetic input fits parameter `{n}`")
        kinds.append((n, ROLE_KIND.get(role, role)))
    code = harness_source
    fname = func.name.value.lower() if isinstance(func, cst.FunctionDef) else ""
    text = code.lower()
    true_names = [n for n, k in kinds if k == "labels"]
    if "sparse" in fname or "sparse" in text or "one_hot(" in text or _CLASS_INDEX_RE.search(text):
        label_kind = "sparse"
    elif re.search(r"kld|kl_?div|divergence", fname) or re.search(r"kl_?div|kullback", text) \
            or any(re.search(rf"\blog\w*\(\s*{re.escape(t.lower())}\b", text) for t in true_names):
        label_kind = "distribution"  # log(y_true ...): soft targets, strictly positive on normal inputs
    elif any(w in fname for w in ("bce", "binary", "dice", "jaccard", "iou", "tversky", "focal", "sigmoid")) \
            or re.search(r"sigmoid|binary|\bdice\b|jaccard|tversky", text) \
            or any(re.search(rf"1(\.0*)?\s*-\s*{re.escape(t.lower())}\b", text) for t in true_names):
        label_kind = "binary"
    elif re.search(r"\blog\w*\(|softmax|crossentropy|cross_entropy|categorical|xlogy|entropy|kl", text):
        label_kind = "onehot"
    elif re.search(r"square|abs\(|\*\*\s*2|huber|mse|mae|rmse|sqrt|\bnorm\b|std\(|pearson|corr", text):
        label_kind = "regression"
    else:
        label_kind = "onehot"
    params_spec = []
    has_params = any(k == "params" for _, k in kinds)
    models = [n for n, k in kinds if k == "model"]
    for n, k in kinds:
        if k == "probs" and any(re.search(rf"\b{re.escape(m)}\s*\(\s*{re.escape(n)}\s*[,)]", code) for m in models):
            # what `model(x)` returns, with the identity as the model: logits when an activation (or a with-logits
            # loss) takes it, else probabilities (a model ending in its own softmax, its output logged directly)
            k = "logits" if _output_is_logits(body, _model_calls(body, set(models), n)) else "probs"
        elif k == "probs" and n in model_data:
            # what the undefined model returns: logits when an activation (or a with-logits loss) follows it, else
            # probabilities (the model ends in its own sigmoid/softmax)
            calls = [c for s in stand.values() for c in s.calls if isinstance(data_arg(c), cst.Name)
                     and data_arg(c).value == n]  # type: ignore[union-attr]
            k = "logits" if _output_is_logits(body, calls) else "probs"
        elif k == "probs" and (label_kind == "regression" or has_params and _matmul_operand(n, code)):
            k = "real"  # regression predictions; features multiplied by the parameters (`x @ params`)
        if k == "params":  # a weight matrix, differentiated as `jax.grad(loss_fn)` would: logit-scaled values
            k = "logits"
        params_spec.append({"name": n, "kind": k, "grad": k in ("probs", "logits", "real")})
    if not any(p["grad"] for p in params_spec):
        raise Isolation("no parameter of the loss looks like a prediction to differentiate with respect to")
    shape = _infer_shape(func, [n for n, _ in kinds], code)
    if len(shape) == 2 and any(k == "params" and n not in dicts for n, k in kinds):
        shape = [shape[-1], shape[-1]]  # square: `x @ params` keeps the shape of every other input
    d = shape[-1] if shape else 1
    for p in params_spec:  # `params["w"]`: a (d, d) matrix where multiplied by (`x @ params["w"]`), else a (d,) vector
        if p["name"] in dicts:
            p["keys"] = {k: [d, d] if mat else [d] for k, mat in dicts[p["name"]].items()}
    return {"params": params_spec, "label_kind": label_kind, "shape": shape, "seed": 0}


def _model_calls(body: cst.CSTNode, models: set[str], data: str) -> list[cst.Call]:
    """The calls `model(data, ...)` in `body` of the step's model parameters."""
    out: list[cst.Call] = []

    class _V(cst.CSTVisitor):
        def visit_Call(self, node: cst.Call) -> None:
            if isinstance(node.func, cst.Name) and node.func.value in models and node.args \
                    and isinstance(node.args[0].value, cst.Name) and node.args[0].value.value == data:
                out.append(node)

    body.visit(_V())
    return out


def only_called(node: cst.CSTNode, name: str, methods_only: bool = False) -> bool:
    """Every use of `name` in `node` is a call of it (`model(x)`) or of one of its methods (`model.apply(p, x)`,
    `opt.apply_gradients(...)`); with `methods_only`, only the latter count."""
    reads, calls = 0, 0

    class _V(cst.CSTVisitor):
        def visit_Name(self, n: cst.Name) -> None:
            nonlocal reads
            reads += n.value == name

        def visit_Call(self, c: cst.Call) -> None:
            nonlocal calls
            f = c.func
            if isinstance(f, cst.Attribute):
                calls += isinstance(f.value, cst.Name) and f.value.value == name
            elif not methods_only:
                calls += isinstance(f, cst.Name) and f.value == name

    node.visit(_V())
    return reads > 0 and reads == calls


def _harness_stand_ins(harness_source: str, func: cst.CSTNode, names: list[str]) -> dict[str, StandIn]:
    """The undefined models `func` calls, as build_harness bound them (names the harness module does not define)."""
    try:
        defined = set(module_bindings(cst.parse_module(harness_source)))
    except cst.ParserSyntaxError:
        return {}
    return model_stand_ins(func, func, names, lambda n: n not in defined)


def _model_only_params(body: cst.CSTNode, stand: dict[str, StandIn], names: list[str]) -> set[str]:
    """Parameters read only inside the other arguments of a stood-in model's calls (`params` in
    `model.apply({"params": params}, x)`)."""
    if not stand:
        return set()
    inside: set[int] = set()

    class _Collect(cst.CSTVisitor):
        def visit_Name(self, node: cst.Name) -> None:
            inside.add(id(node))

    for s in stand.values():
        for c in s.calls:
            d = data_arg(c)
            for a in c.args:
                if a.value is not d:
                    a.value.visit(_Collect())
    reads = _model_uses(body, set(names)).reads
    return {n for n in names if reads[n] and all(id(r) in inside for r in reads[n])}


_ACTIVATION_RE = re.compile(r"(?:log_?)?softmax|(?:log_?)?sigmoid|softplus|logsumexp|\w*with_logits|"
                            r"\w*softmax_cross_entropy\w*|sigmoid_\w*cross_entropy\w*|cross_entropy")
_LABEL_KEYWORDS = frozenset({"labels", "label", "targets", "target", "y_true"})


def _contains(node: cst.CSTNode, ids: set[int]) -> bool:
    found = False

    class _V(cst.CSTVisitor):
        def on_visit(self, n: cst.CSTNode) -> bool:
            nonlocal found
            found = found or id(n) in ids
            return not found

    node.visit(_V())
    return found


def _output_is_logits(body: cst.CSTNode, calls: list[cst.Call]) -> bool:
    """Does an activation (`sigmoid`, `softmax`, ...), a with-logits loss or `from_logits=True` take the model's
    output (the call, or a variable computed from it), or is that variable named like logits?"""
    call_ids = {id(c) for c in calls}
    outs: set[str] = set()
    assigns: list[cst.Assign] = []

    class _Assigns(cst.CSTVisitor):
        def visit_Assign(self, node: cst.Assign) -> None:
            assigns.append(node)

    body.visit(_Assigns())
    changed = True
    while changed:  # variables computed from the model's output, transitively
        changed = False
        for a in assigns:
            if _contains(a.value, call_ids) or any(n in outs for n in _names(a.value).read):
                for t in a.targets:
                    if isinstance(t.target, cst.Name) and t.target.value not in outs:
                        outs.add(t.target.value)
                        changed = True
    if any("logit" in o.lower() for o in outs):
        return True
    found = False

    class _Consumers(cst.CSTVisitor):
        def visit_Call(self, node: cst.Call) -> None:
            nonlocal found
            name = _dotted(node.func).rsplit(".", 1)[-1].lower()
            from_logits = any(a.keyword is not None and a.keyword.value == "from_logits"
                              and isinstance(a.value, cst.Name) and a.value.value == "True" for a in node.args)
            if not (from_logits or _ACTIVATION_RE.fullmatch(name)):
                return
            for a in node.args:
                if a.keyword is not None and a.keyword.value in _LABEL_KEYWORDS:
                    continue
                if _contains(a.value, call_ids) or isinstance(a.value, cst.Name) and a.value.value in outs:
                    found = True

    body.visit(_Consumers())
    return found


_MATMUL_CALLS = frozenset({"matmul", "dot", "mm", "bmm", "tensordot", "inner", "vdot", "einsum"})


def _string_keys(body: cst.CSTNode, name: str) -> dict[str, bool] | None:
    """`params["w"]`, `params["b"]`: when every read of `name` is a string subscript, key -> whether it is multiplied
    as a matrix (`x @ params["w"]`, `jnp.dot(x, params["w"])`); else None."""
    subs: dict[int, str] = {}
    roots: set[int] = set()

    class _Subs(cst.CSTVisitor):
        def visit_Subscript(self, node: cst.Subscript) -> None:
            if isinstance(node.value, cst.Name) and node.value.value == name and len(node.slice) == 1:
                el = node.slice[0].slice
                if isinstance(el, cst.Index) and isinstance(el.value, cst.SimpleString):
                    key = el.value.evaluated_value
                    if isinstance(key, str):
                        subs[id(node)] = key
                        roots.add(id(node.value))

    body.visit(_Subs())
    reads = _model_uses(body, {name}).reads[name]
    if not subs or any(id(r) not in roots for r in reads):
        return None
    keys = {k: False for k in subs.values()}

    class _Mat(cst.CSTVisitor):
        def visit_BinaryOperation(self, node: cst.BinaryOperation) -> None:
            if isinstance(node.operator, cst.MatrixMultiply):
                for side in (node.left, node.right):
                    if id(side) in subs:
                        keys[subs[id(side)]] = True

        def visit_Call(self, node: cst.Call) -> None:
            if _dotted(node.func).rsplit(".", 1)[-1] in _MATMUL_CALLS:
                for a in node.args:
                    if id(a.value) in subs:
                        keys[subs[id(a.value)]] = True

    body.visit(_Mat())
    return keys


def _infer_shape(func: cst.CSTNode, names: list[str], code: str) -> list[int]:
    rank, last = 2, 5
    for m in _AXIS_RE.finditer(code):
        for a in m.group(2).split(","):
            a_i = int(a)
            if a_i >= 0:
                rank = max(rank, a_i + 1)
    name_set = set(names)

    class _Sub(cst.CSTVisitor):
        def visit_Subscript(self, node: cst.Subscript) -> None:
            nonlocal rank, last
            if not (isinstance(node.value, cst.Name) and node.value.value in name_set):
                return
            elems = [e.slice for e in node.slice]
            ellipsis = any(isinstance(e, cst.Index) and isinstance(e.value, cst.Ellipsis) for e in elems)
            if not ellipsis:
                rank = max(rank, len(elems))
            final = elems[-1] if elems else None
            if isinstance(final, cst.Index) and isinstance(final.value, cst.Integer) \
                    and (ellipsis or len(elems) >= rank):
                last = max(last, int(final.value.evaluated_value) + 1)

    func.visit(_Sub())
    rank = min(rank, 5)
    lead = {1: [], 2: [8], 3: [4, 6], 4: [2, 6, 6], 5: [2, 3, 4, 4]}[rank]
    return lead + [min(last, 64)]

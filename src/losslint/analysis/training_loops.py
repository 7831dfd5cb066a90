"""Training loops written by hand: GradientTape steps, `loss.backward()` calls, PyTorch autocast regions, and whether
the loss they differentiate went through loss scaling.

* `gradient_steps(index)`: every `<tape>.gradient(target, sources)` where `<tape>` is bound by
  `with tf.GradientTape() as tape` (or `tape = tf.GradientTape()`) in the same function, and `sources` are model
  weights (`trainable_variables`, `trainable_weights`, `weights`, `variables`): a training step, not a gradient with
  respect to inputs (a gradient penalty, saliency).
* `autocast_regions(index)`: PyTorch `autocast` blocks whose dtype the code states (float16 or bfloat16), with the
  names assigned inside them.
* `backward_steps(index, region)`: `x.backward()` calls after an autocast region in the same function, where `x`
  depends on a value computed inside it.
* `mentions_method(expr, names)`: does an expression (through local assignments) contain a `.name(...)` call
  (`opt.get_scaled_loss(loss)`, `scaler.scale(loss)`)?

Nothing here knows about a rule; the answers are plain data.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import libcst as cst

from losslint.analysis.calls import kwarg, positional
from losslint.analysis.dtypes import BFLOAT16, FLOAT16, dtype_named, reaching_values
from losslint.analysis.index import FuncInfo, ModuleIndex, StmtInfo, WithInfo
from losslint.analysis.names import names_in
from losslint.analysis.walk import walk

_WEIGHT_ATTRS = frozenset({"trainable_variables", "trainable_weights", "weights", "variables",
                           "trainable_params", "params"})


def _names_in(expr: cst.CSTNode) -> set[str]:
    return set(names_in(expr))


def _method_calls(expr: cst.CSTNode) -> set[str]:
    """The method names called anywhere in `expr` (`opt.get_scaled_loss(l)` -> {"get_scaled_loss"})."""
    out: set[str] = set()

    def enter(n: cst.CSTNode) -> None:
        if isinstance(n, cst.Call) and isinstance(n.func, cst.Attribute):
            out.add(n.func.attr.value)

    walk(expr, enter)
    return out


def _attrs_in(expr: cst.CSTNode) -> set[str]:
    out: set[str] = set()

    def enter(n: cst.CSTNode) -> None:
        if isinstance(n, cst.Attribute):
            out.add(n.attr.value)

    walk(expr, enter)
    return out


def mentions_method(index: ModuleIndex, expr: cst.BaseExpression, stmt: StmtInfo, names: frozenset[str],
                    depth: int = 0) -> bool:
    """Does `expr`, or a local value it is computed from (up to four assignments back), call `.name(...)` for a
    name in `names`?"""
    if _method_calls(expr) & names:
        return True
    if depth >= 4:
        return False
    for name in _names_in(expr):
        values = reaching_values(index, name, stmt) or []
        for value, vstmt in values:
            if mentions_method(index, value, vstmt, names, depth + 1):
                return True
    return False


# ---- TensorFlow: GradientTape steps ------------------------------------------------------------------------------
@dataclass(eq=False)
class GradientStep:
    call: cst.Call  # tape.gradient(target, sources)
    stmt: StmtInfo
    target: cst.BaseExpression
    tape: WithInfo | None  # the `with tf.GradientTape() as tape` block, when the tape is bound by one


def _is_tape(index: ModuleIndex, call: cst.BaseExpression) -> bool:
    if not isinstance(call, cst.Call):
        return False
    q = index.qualify(call.func) or ""
    return q.endswith("GradientTape") and q.split(".", 1)[0] in ("tensorflow", "tf")


def _tapes(index: ModuleIndex) -> dict[tuple[int, str], WithInfo | None]:
    """(id of the function or 0 for the module, tape name) -> the with block binding it (None for `t = Tape()`)."""
    out: dict[tuple[int, str], WithInfo | None] = {}
    for w in index.withs:
        for item in w.node.items:
            if _is_tape(index, item.item) and item.asname is not None and isinstance(item.asname.name, cst.Name):
                out[(id(w.stmt.func.node) if w.stmt.func else 0, item.asname.name.value)] = w
    for f in index.functions:
        for name, defs in f.defs.items():
            if any(d.kind == "assign" and d.value is not None and _is_tape(index, d.value) for d in defs):
                out.setdefault((id(f.node), name), None)
    return out


def gradient_steps(index: ModuleIndex) -> list[GradientStep]:
    tapes = _tapes(index)
    if not tapes:
        return []
    out: list[GradientStep] = []
    for call, stmt in index.all_calls:
        func = call.func
        if not (isinstance(func, cst.Attribute) and func.attr.value == "gradient"
                and isinstance(func.value, cst.Name)):
            continue
        key = (id(stmt.func.node) if stmt.func else 0, func.value.value)
        if key not in tapes:
            continue
        args = positional(call)
        target = args[0] if args else kwarg(call, "target")
        sources = args[1] if len(args) > 1 else kwarg(call, "sources")
        if target is None or sources is None:
            continue
        if not _is_weights(index, sources, stmt):
            continue
        out.append(GradientStep(call, stmt, target, tapes[key]))
    return out


def _is_weights(index: ModuleIndex, sources: cst.BaseExpression, stmt: StmtInfo, depth: int = 0) -> bool:
    if _attrs_in(sources) & _WEIGHT_ATTRS:
        return True
    if depth < 3 and isinstance(sources, cst.Name):
        for value, vstmt in reaching_values(index, sources.value, stmt) or []:
            if _is_weights(index, value, vstmt, depth + 1):
                return True
    return False


# ---- PyTorch: autocast regions and backward calls ----------------------------------------------------------------
@dataclass(eq=False)
class AutocastRegion:
    with_info: WithInfo
    call: cst.Call  # the autocast(...) call
    dtype: str  # FLOAT16 or BFLOAT16, as the code states it
    func: FuncInfo | None
    assigned: set[str] = field(default_factory=set)  # names bound inside the block


def _stated_autocast_dtype(index: ModuleIndex, call: cst.Call) -> str | None:
    """The dtype a torch autocast call provably selects, or None when it is disabled or cannot be told (a dtype or
    device held in a variable)."""
    q = index.qualify(call.func) or ""
    if not (q.startswith("torch") and q.endswith("autocast")):
        return None
    enabled = kwarg(call, "enabled")
    if isinstance(enabled, cst.Name) and enabled.value == "False":
        return None
    d_expr = kwarg(call, "dtype")
    if d_expr is not None:
        d = dtype_named(d_expr)
        return d if d in (FLOAT16, BFLOAT16) else None
    if q == "torch.cuda.amp.autocast":
        return FLOAT16
    if q == "torch.cpu.amp.autocast":
        return BFLOAT16
    device = kwarg(call, "device_type")
    args = positional(call)
    if device is None and args:
        device = args[0]
    if isinstance(device, cst.SimpleString):
        return {"cuda": FLOAT16, "cpu": BFLOAT16}.get(str(device.evaluated_value))
    return None


def autocast_regions(index: ModuleIndex) -> list[AutocastRegion]:
    out: list[AutocastRegion] = []
    for w in index.withs:
        for item in w.node.items:
            if not isinstance(item.item, cst.Call):
                continue
            d = _stated_autocast_dtype(index, item.item)
            if d is None:
                continue
            region = AutocastRegion(w, item.item, d, w.stmt.func)
            body_id = id(w.node.body)
            defs = w.stmt.func.defs if w.stmt.func is not None else index.module_defs
            for name, ds in defs.items():
                if any(body_id in dd.path for dd in ds if dd.stmt is not None):
                    region.assigned.add(name)
            out.append(region)
            break
    return out


@dataclass(eq=False)
class BackwardStep:
    call: cst.Call  # x.backward()
    stmt: StmtInfo
    receiver: cst.BaseExpression


def backward_steps(index: ModuleIndex, region: AutocastRegion) -> list[BackwardStep]:
    """`x.backward()` calls in the region's function, inside or after it, where `x` depends on a name bound inside
    the region (directly or through later assignments)."""
    func = region.func
    defs = func.defs if func is not None else index.module_defs
    calls = func.calls if func is not None else index.module_calls
    start = region.with_info.stmt.index
    tainted = set(region.assigned)
    for _ in range(4):  # `loss = loss / accum`, `total = loss_a + loss_b`
        grown = False
        for name, ds in defs.items():
            if name in tainted:
                continue
            for d in ds:
                if d.stmt is not None and d.index > start and d.value is not None and _names_in(d.value) & tainted:
                    tainted.add(name)
                    grown = True
                    break
        if not grown:
            break
    out: list[BackwardStep] = []
    for call, stmt in calls:
        f = call.func
        if not (isinstance(f, cst.Attribute) and f.attr.value == "backward") or stmt.index <= start:
            continue
        if _names_in(f.value) & tainted:
            out.append(BackwardStep(call, stmt, f.value))
    return out

"""Training loops: the `for`/`while` loops of a module, what is `.backward()`-ed inside them, and which statements sit
under `torch.no_grad()`.

Accumulating a loss tensor across loop iterations (`total += loss`) keeps every iteration's autograd graph alive; to
tell that from a multi-term loss being summed up, rules need the loop, the value backpropagated in it, and whether
autograd is recording at all.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import libcst as cst

from losslint.analysis.calls import positional
from losslint.analysis.index import Def, FuncInfo, ModuleIndex, StmtInfo
from losslint.analysis.names import names_in

_NO_GRAD = ("no_grad", "inference_mode", "set_grad_enabled")


@dataclass(eq=False)
class Loop:
    node: cst.For | cst.While
    stmt: StmtInfo
    body_id: int
    backward_names: set[str] = field(default_factory=set)  # names `.backward()` is called on inside the loop


class Loops:
    def __init__(self, index: ModuleIndex) -> None:
        self.index = index
        self.by_body: dict[int, Loop] = {}
        for info in index.stmt_info.values():
            if isinstance(info.node, (cst.For, cst.While)):
                loop = Loop(info.node, info, id(info.node.body))
                self.by_body[loop.body_id] = loop
        for call, stmt in index.all_calls:
            name = backward_target(call)
            if name is None:
                continue
            for loop in self.enclosing(stmt):
                loop.backward_names.add(name)
        self._no_grad_blocks = {id(w.node.body) for w in index.withs
                                if any(op.endswith(_NO_GRAD) for op in w.context_ops)}

    _cache: dict[int, "Loops"] = {}

    @classmethod
    def of(cls, index: ModuleIndex) -> "Loops":
        found = cls._cache.get(id(index))
        if found is None or found.index is not index:
            found = cls(index)
            cls._cache.clear()
            cls._cache[id(index)] = found
        return found

    def enclosing(self, stmt: StmtInfo) -> list[Loop]:
        """The loops whose body holds `stmt`, innermost first."""
        return [self.by_body[b] for b in reversed(stmt.path) if b in self.by_body]

    def no_grad(self, stmt: StmtInfo) -> bool:
        """Whether autograd is off at `stmt`: a `with torch.no_grad()` block or a `@torch.no_grad()` function."""
        if any(b in self._no_grad_blocks for b in stmt.path):
            return True
        f: FuncInfo | None = stmt.func
        while f is not None:
            if any(d.endswith(_NO_GRAD) for d in f.decorators):
                return True
            f = f.parent
        return False

    def defined_before(self, name: str, loop: Loop, stmt: StmtInfo) -> Def | None:
        """A binding of `name` that reaches the loop from outside it (so the value carries across iterations)."""
        table = stmt.func.defs if stmt.func is not None else self.index.module_defs
        for d in table.get(name, []):
            if d.kind == "param":
                return d
            if d.stmt is not None and d.stmt.index < loop.stmt.index and loop.body_id not in d.stmt.path:
                return d
        return None

    def rebound_in_loop(self, name: str, loop: Loop, stmt: StmtInfo) -> bool:
        """Whether a plain assignment inside the loop, before `stmt`, resets `name` each iteration."""
        table = stmt.func.defs if stmt.func is not None else self.index.module_defs
        return any(d.kind == "assign" and d.stmt is not None and loop.body_id in d.stmt.path
                   and d.stmt.index < stmt.index and d.stmt.path == stmt.path[:len(d.stmt.path)]
                   for d in table.get(name, []))


def backward_target(call: cst.Call) -> str | None:
    """`loss.backward()`, `scaler.scale(loss).backward()`, `accelerator.backward(loss)`: the name backpropagated."""
    func = call.func
    if not (isinstance(func, cst.Attribute) and func.attr.value == "backward"):
        return None
    if call.args:
        pos = positional(call)
        target = pos[0] if pos else None
    else:
        target = func.value
        if isinstance(target, cst.Call) and isinstance(target.func, cst.Attribute) \
                and target.func.attr.value == "scale" and target.args:
            target = target.args[0].value
    if isinstance(target, cst.Name):
        return target.value
    if target is not None:
        names = names_in(target)
        return names[0] if len(names) == 1 else None
    return None


__all__ = ["Loop", "Loops", "backward_target"]

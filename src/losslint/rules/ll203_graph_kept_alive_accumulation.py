"""LL203 graph-kept-alive-accumulation: `total += loss` / `losses.append(loss)` with the loss *tensor* across the
iterations of a PyTorch training or evaluation loop."""

from __future__ import annotations

import libcst as cst

from losslint.analysis.index import StmtInfo, function_named
from losslint.analysis.loops import Loop, Loops, backward_target
from losslint.analysis.names import dotted_name, names_in
from losslint.analysis.scopes import Scope, is_loss_name
from losslint.analysis.walk import walk
from losslint.rules.base import Invalid, Rule, Valid

# Calls that turn a tensor into a Python number or a graph-free tensor.
_DETACHING = frozenset({"item", "detach", "tolist", "numpy", "float", "int", "detach_", "cpu_item"})
_LOADER_WORDS = ("loader", "dataset", "batches", "data_iter", "train_iter", "val_iter", "dl")


def _detached(expr: cst.BaseExpression) -> bool:
    found = False

    def enter(n: cst.CSTNode) -> bool | None:
        nonlocal found
        if isinstance(n, cst.Call):
            f = n.func
            name = f.attr.value if isinstance(f, cst.Attribute) else (f.value if isinstance(f, cst.Name) else "")
            if name in _DETACHING:
                found = True
        if isinstance(n, cst.Attribute) and n.attr.value == "data":
            found = True
        return None

    walk(expr, enter)
    return found


def _over_loader(loop: Loop) -> bool:
    """A `for` over something named like a data loader (`loader`, `val_loader`, `enumerate(train_dl)`)."""
    if not isinstance(loop.node, cst.For):
        return False
    for n in names_in(loop.node.iter):
        low = n.lower()
        if any(low == w or low.endswith("_" + w) or low.startswith(w) or w in low.split("_")
               for w in _LOADER_WORDS):
            return True
    return False


class GraphKeptAliveAccumulation(Rule):
    code = "LL203"
    name = "graph-kept-alive-accumulation"
    summary = "torch `total += loss` / `losses.append(loss)` (the tensor) across iterations keeps every graph alive"
    what_it_does = (
        "In PyTorch code, finds a loss tensor added to an accumulator (`total += loss`, `total = total + loss`) or "
        "appended to a list (`losses.append(loss)`) that lives across the iterations of a loop, when the loss is the "
        "value `.backward()` is called on in that loop, or the result of a criterion in a loop over a data loader. "
        "Not reported: `loss.item()`, `loss.detach()`, `float(loss)`, `.tolist()`, code under `torch.no_grad()` / "
        "`inference_mode()` (block or decorator), an accumulator that is itself `.backward()`-ed (gradient "
        "accumulation), and loops that sum the terms of one loss (deep supervision, several heads)."
    )
    why_bad = (
        "A loss tensor carries its autograd graph, and keeping it in a running total or a list keeps every "
        "iteration's graph reachable. When nothing calls `.backward()` on it (an evaluation loop without "
        "`torch.no_grad()`: `model.eval()` does not stop autograd), that graph holds every activation the forward "
        "pass saved for backward: memory grows by one batch's activations per iteration (42.5 KB per batch of 32 for a "
        "64-256-10 MLP) until the process runs out of (GPU) memory. `.backward()` frees the saved activations but "
        "not the graph: its nodes stay reachable from the total, so host memory still grows with every batch (5.6 KB "
        "per batch for an 8-16-2 MLP, whose graph has 8 nodes), each `total += loss` chains one more node onto the "
        "total, and a backward through the total raises. This is an entry of the PyTorch FAQ (\"My model reports "
        "'cuda runtime error(2): out of memory'\")."
    )
    example = """\
        total_loss = 0
        for x, y in loader:
            loss = criterion(model(x), y)
            loss.backward()
            optimizer.step()
            total_loss += loss
    """
    use_instead = """\
        total_loss = 0.0
        for x, y in loader:
            loss = criterion(model(x), y)
            loss.backward()
            optimizer.step()
            total_loss += loss.item()      # a Python float: the graph is freed
    """
    fix_safety = "No automatic fix yet (`loss.item()` is the usual fix; `loss.detach()` keeps a tensor on device)."
    frameworks = ("torch",)
    scoped = False

    def __init__(self, context) -> None:  # type: ignore[no-untyped-def]
        super().__init__(context)
        self._loops: Loops | None = None
        self._torch: bool | None = None

    def _is_torch(self) -> bool:
        if self._torch is None:
            roots = self.context.index.imports.roots()
            self._torch = "torch" in roots and not ({"tensorflow", "jax", "keras"} & roots)
        return self._torch

    def visit_AugAssign(self, node: cst.AugAssign) -> None:
        if isinstance(node.operator, cst.AddAssign) and isinstance(node.target, cst.Name):
            self._check(node, node.target.value, node.value, "adds")

    def visit_Assign(self, node: cst.Assign) -> None:
        if len(node.targets) == 1 and isinstance(node.targets[0].target, cst.Name) \
                and isinstance(node.value, cst.BinaryOperation) and isinstance(node.value.operator, cst.Add):
            acc = node.targets[0].target.value
            left, right = node.value.left, node.value.right
            if isinstance(left, cst.Name) and left.value == acc:
                self._check(node, acc, right, "adds")
            elif isinstance(right, cst.Name) and right.value == acc:
                self._check(node, acc, left, "adds")

    def visit_Call(self, node: cst.Call) -> None:
        func = node.func
        if isinstance(func, cst.Attribute) and func.attr.value in ("append", "extend") \
                and isinstance(func.value, cst.Name) and len(node.args) == 1 and node.args[0].keyword is None:
            self._check(node, func.value.value, node.args[0].value, "appends")

    def _check(self, node: cst.CSTNode, acc: str, value: cst.BaseExpression, verb: str) -> None:
        stmt = self.stmt
        if stmt is None or not self._is_torch() or _detached(value):
            return
        if self._loops is None:
            self._loops = Loops.of(self.context.index)
        loops = self._loops
        if loops.no_grad(stmt):
            return
        value_names = set(names_in(value))
        if acc in value_names and verb == "appends":
            return
        for loop in loops.enclosing(stmt):
            if acc in loop.backward_names or self._backwarded(acc, stmt):
                return  # gradient accumulation over several losses: the graphs are wanted
            if loops.defined_before(acc, loop, stmt) is None or loops.rebound_in_loop(acc, loop, stmt):
                continue
            hit = self._loss_tensor(value_names, loop, stmt)
            if hit is None:
                continue
            name, how = hit
            if name in loop.backward_names:
                kept = ("every iteration's autograd graph stays reachable from it (backward frees the saved "
                        "activations, not the graph), so memory grows with every batch")
            else:
                kept = ("every iteration's autograd graph stays alive, with the activations it saved unless a "
                        "backward pass frees them, and memory grows until the run is out of memory")
            message = (f"`{self.source_of(node, 50)}` {verb} the loss tensor `{name}` ({how}) to `{acc}`, which "
                       f"lives across iterations: {kept}; accumulate `{name}.item()` (or `{name}.detach()`)")
            self._report_in_loop(node, message, loop)
            return

    def _backwarded(self, acc: str, stmt: StmtInfo) -> bool:
        for call, cstmt in self.context.index.all_calls:
            if cstmt.func is stmt.func and backward_target(call) == acc:
                return True
        return False

    def _loss_tensor(self, names: set[str], loop: Loop, stmt: StmtInfo) -> tuple[str, str] | None:
        for n in sorted(names):
            if n in loop.backward_names:
                return n, "`.backward()` is called on it in this loop"
        if not _over_loader(loop):
            return None
        table = stmt.func.defs if stmt.func is not None else self.context.index.module_defs
        for n in sorted(names):
            for d in table.get(n, []):
                if d.stmt is None or loop.body_id not in d.stmt.path or d.stmt.index > stmt.index:
                    continue
                if isinstance(d.value, cst.Call):
                    helper = function_named(self.context.index, d.value.func, d.stmt)
                    if helper is not None and helper.returns and all(_detached(r) for r, _ in helper.returns):
                        continue  # a same-module helper that returns `loss.item()`: a Python number
                    callee = dotted_name(d.value.func) or ""
                    last = callee.rsplit(".", 1)[-1]
                    if last and (is_loss_name(last) or "criterion" in last.lower()):
                        return n, f"the criterion's output in a loop over `{self.source_of(loop.node.iter, 30)}`" \
                            if isinstance(loop.node, cst.For) else "the criterion's output"
        return None

    def _report_in_loop(self, node: cst.CSTNode, message: str, loop: Loop) -> None:
        where = f" in `{loop.stmt.func.qualname}`" if loop.stmt.func is not None else ""
        self.report(node, message, fallback_scope=Scope("backward", f"training loop{where}"))

    VALID = [
        Valid("""
            import torch

            def train(model, loader, optimizer, criterion):
                total = 0.0
                for x, y in loader:
                    optimizer.zero_grad()
                    loss = criterion(model(x), y)
                    loss.backward()
                    optimizer.step()
                    total += loss.item()
                return total / len(loader)
        """, "loss.item(): a Python float"),
        Valid("""
            import torch

            def train(model, loader, optimizer, criterion):
                history = []
                for x, y in loader:
                    loss = criterion(model(x), y)
                    loss.backward()
                    optimizer.step()
                    history.append(loss.detach())
        """, "loss.detach(): a graph-free tensor"),
        Valid("""
            import torch

            @torch.no_grad()
            def evaluate(model, loader, criterion):
                total = 0
                for x, y in loader:
                    total += criterion(model(x), y)
                return total / len(loader)
        """, "evaluation under @torch.no_grad(): no graph is recorded"),
        Valid("""
            import torch

            def evaluate(model, val_loader, criterion):
                val_loss = 0
                with torch.no_grad():
                    for x, y in val_loader:
                        loss = criterion(model(x), y)
                        val_loss += loss
                return val_loss
        """, "evaluation inside `with torch.no_grad()`"),
        Valid("""
            import torch

            def train_step(model, micro_batches, optimizer, criterion):
                total = 0
                for x, y in micro_batches:
                    total += criterion(model(x), y) / len(micro_batches)
                total.backward()
                optimizer.step()
        """, "gradient accumulation: the sum itself is backpropagated"),
        Valid("""
            import torch.nn as nn
            import torch.nn.functional as F

            class DeepSupervisionLoss(nn.Module):
                def forward(self, outputs, target):
                    total = 0
                    for out in outputs:
                        loss = F.cross_entropy(out, target)
                        total += loss
                    return total / len(outputs)
        """, "summing the terms of one loss: the graph is needed"),
        Valid("""
            import torch

            def train(model, loader, optimizer, criterion):
                for x, y in loader:
                    running = 0
                    loss = criterion(model(x), y)
                    loss.backward()
                    running += loss
                    print(running)
        """, "the accumulator is reset every iteration"),
        Valid("""
            import torch

            def train(model, loader, optimizer, criterion):
                total = 0.0
                for x, y in loader:
                    loss = criterion(model(x), y)
                    loss.backward()
                    optimizer.step()
                    total += float(loss)
        """, "float(loss)"),
        Valid("""
            import torch

            def get_loss_batch(output, targets, loss_func, opt=None):
                loss = loss_func(output, targets)
                if opt is not None:
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                return loss.item()

            def loss_epoch(model, loss_func, dataset_dl, opt=None):
                running_loss = 0.0
                for xb, yb in dataset_dl:
                    loss_b = get_loss_batch(model(xb), yb, loss_func, opt)
                    running_loss += loss_b
                return running_loss / len(dataset_dl.dataset)
        """, "a same-module loss helper that returns loss.item() (PyTorch Computer Vision Cookbook, chapter 5)"),
    ]
    INVALID = [
        Invalid("""
            import torch

            def train(model, loader, optimizer, criterion):
                total_loss = 0
                for x, y in loader:
                    optimizer.zero_grad()
                    loss = criterion(model(x), y)
                    loss.backward()
                    optimizer.step()
                    total_loss += loss
                return total_loss / len(loader)
        """, "LL203", 10, "the classic running total"),
        Invalid("""
            import torch

            losses = []
            for epoch in range(10):
                for x, y in train_loader:
                    loss = torch.nn.functional.mse_loss(model(x), y)
                    optimizer.zero_grad()
                    loss.backward()
                    optimizer.step()
                    losses.append(loss)
        """, "LL203", 10, "module-level script appending the tensor"),
        Invalid("""
            import torch

            def fit(model, loader, opt, loss_fn):
                epoch_loss = torch.zeros(1)
                for batch in loader:
                    loss = loss_fn(model(batch["x"]), batch["y"])
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                    epoch_loss = epoch_loss + loss
                return epoch_loss
        """, "LL203", 10, "total = total + loss"),
        Invalid("""
            import torch

            def validate(model, val_loader, criterion):
                model.eval()
                val_loss = 0
                for x, y in val_loader:
                    loss = criterion(model(x), y)
                    val_loss += loss
                return val_loss / len(val_loader)
        """, "LL203", 8, "evaluation loop without torch.no_grad(): eval() does not stop autograd"),
        Invalid("""
            import torch

            def train(model, loader, optimizer, criterion, scaler):
                running = 0.0
                for step, (x, y) in enumerate(loader):
                    with torch.autocast("cuda"):
                        loss = criterion(model(x), y)
                    scaler.scale(loss).backward()
                    scaler.step(optimizer)
                    scaler.update()
                    running += loss * x.size(0)
        """, "LL203", 11, "AMP loop, the loss scaled by the batch size"),
        Invalid("""
            import torch

            class Trainer:
                def run_epoch(self, loader):
                    self.history = []
                    batch_losses = []
                    for x, y in loader:
                        loss = self.criterion(self.model(x), y)
                        self.optimizer.zero_grad()
                        loss.backward()
                        self.optimizer.step()
                        batch_losses.append(loss)
                    return sum(batch_losses) / len(batch_losses)
        """, "LL203", 12, "a method appending the tensor"),
    ]

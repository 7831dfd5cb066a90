"""LL103 unguarded-division: a denominator that can be exactly 0 inside a loss."""

from __future__ import annotations

import libcst as cst

from losslint.analysis.facts import Value, origin_phrase
from losslint.analysis.spelling import code, divide_no_nan_spelling
from losslint.rules.base import FixSpec, Invalid, Replacement, Rule, Valid

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
        "Safe once confirmed, for TensorFlow and Keras 3 code: `a / b` becomes `tf.math.divide_no_nan(a, b)` "
        "(`ops.divide_no_nan` in Keras 3), which equals the original wherever b != 0 and gives 0 (with a zero "
        "gradient) where the original gave NaN or inf. `losslint fix` applies it after TensorFlow has confirmed "
        "values and gradients on normal inputs and finite results on all-zero masks. PyTorch and JAX have no "
        "divide_no_nan and a smooth term changes the loss everywhere, so no fix is offered there."
    )

    def visit_BinaryOperation(self, node: cst.BinaryOperation) -> None:
        if isinstance(node.operator, (cst.Divide, cst.FloorDivide)):
            self._check(node, node.left, node.right)

    def visit_AugAssign(self, node: cst.AugAssign) -> None:
        if isinstance(node.operator, cst.DivideAssign):
            self._check(node, node.target, node.value)

    def visit_Call(self, node: cst.Call) -> None:
        op = self.op_of(node)
        if op is None or op.name not in _DIVS:
            return
        positional = [a.value for a in node.args if a.keyword is None and not a.star]
        keywords = {a.keyword.value: a.value for a in node.args if a.keyword is not None}
        num: cst.BaseExpression | None
        if op.name == "reciprocal":
            num = None
            den = node.func.value if op.is_method else (positional[0] if positional else None)  # type: ignore
        elif op.is_method:
            num = node.func.value  # type: ignore[attr-defined]
            den = positional[0] if positional else keywords.get("other")
        else:
            num = positional[0] if positional else keywords.get("x")
            den = positional[1] if len(positional) > 1 else keywords.get("y", keywords.get("other"))
        if den is not None:
            self._check(node, num, den)

    def _check(self, node: cst.CSTNode, num: cst.BaseExpression | None, den: cst.BaseExpression) -> None:
        v = self.context.facts.denominator(num, den, self.stmt)
        if not _risky(v) or self.context.facts.only_compared(node, self.stmt):
            return
        self.report(node, f"division by `{self.source_of(den)}` ({origin_phrase(v)}), which can be 0: the loss "
                          f"and its gradient become NaN/inf", self._fix(node, num, den))

    def _fix(self, node: cst.CSTNode, num: cst.BaseExpression | None, den: cst.BaseExpression) -> FixSpec | None:
        # divide_no_nan gives 0 exactly where the original gave NaN/inf, and a zero gradient there: the values
        # elsewhere are unchanged, so it is safe once confirmed. Only TensorFlow and Keras 3 have it.
        if not (isinstance(node, cst.BinaryOperation) and isinstance(node.operator, cst.Divide)) or num is None:
            return None
        if isinstance(num, (cst.Integer, cst.Float)):
            return None  # divide_no_nan(1, x) would mix a Python int into a float op
        spelled = divide_no_nan_spelling(self.context.index, den)
        if spelled is None:
            return None
        return FixSpec("use divide_no_nan (0 where the denominator is 0)", "safe",
                       (Replacement(node, f"{spelled}({code(num)}, {code(den)})"),))

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
        Valid("""
            from keras import ops

            def categorical_focal_crossentropy(y_true, y_pred, axis=-1):
                output = y_pred / ops.sum(y_pred, axis=axis, keepdims=True)
                output = ops.clip(output, 1e-7, 1.0 - 1e-7)
                return -ops.sum(y_true * ops.log(output), axis=axis)
        """, "renormalising a predicted distribution by its own total (1 by contract), as Keras' losses do"),
        Valid("""
            from keras import ops

            def categorical_generalized_cross_entropy(y_true, y_pred, q):
                p = ops.sum(y_pred * y_true, axis=-1)
                return (1 - ops.power(p, q)) / q
        """, "`q` beside an explicit (y_true, y_pred) is a hyper-parameter, not a prediction (keras 3.15)"),
        Valid("""
            import jax
            import jax.numpy as jnp

            def dice_loss(predictions, targets, alpha=0.5, beta=0.5, smooth=1.0):
                probs = jax.nn.softmax(predictions, axis=-1)
                intersection = jnp.sum(probs * targets, axis=(1, 2))
                pred_sum = jnp.sum(probs, axis=(1, 2))
                target_sum = jnp.sum(targets, axis=(1, 2))
                denominator = (intersection + alpha * (pred_sum - intersection)
                               + beta * (target_sum - intersection) + smooth)
                return 1.0 - (intersection + smooth) / denominator
        """, "the intersection never exceeds either sum, so the Tversky denominator is >= smooth (optax 0.2.8)"),
        Valid("""
            import torch

            def _lovasz_grad(gt_sorted):
                gts = gt_sorted.sum()
                intersection = gts - gt_sorted.float().cumsum(0)
                union = gts + (1 - gt_sorted).float().cumsum(0)
                return 1.0 - intersection / union

            def lovasz_hinge_loss(logits, labels):
                errors, perm = torch.sort(1.0 - logits * (2.0 * labels - 1.0), descending=True)
                return torch.dot(torch.relu(errors), _lovasz_grad(labels[perm]))
        """, "sum(t) + cumsum(1 - t) >= 1: the Lovasz union (smp 0.6, kornia 0.9)"),
        Valid("""
            import torch

            def pnp_loss(sim, labels):
                pos = (labels[:, None] == labels[None, :]).float()
                safe = pos.sum(dim=1) > 1
                if torch.sum(safe) == 0:
                    return sim.sum() * 0
                return (sim * pos).sum(dim=1)[safe].sum() / torch.sum(safe)
        """, "an early return when the denominator is 0 (pytorch-metric-learning 2.9)"),
        Valid("""
            import torch

            def tcm_loss(pos_sims, margin=0.9):
                below = pos_sims <= margin
                num = ((margin - pos_sims) * below).sum()
                denom = below.sum()
                return 0 if below.sum() == 0 else num / denom
        """, "a conditional expression that tests the denominator (pytorch-metric-learning 2.9)"),
        Valid("""
            import torch

            class AngularLoss(torch.nn.Module):
                def forward(self, anchors, positives, keep_mask):
                    self.set_stats(anchors, keep_mask)
                    return (anchors - positives).pow(2).sum()

                def set_stats(self, anchors, keep_mask):
                    with torch.no_grad():
                        self.avg = torch.sum(anchors[keep_mask]) / torch.sum(keep_mask)
        """, "a helper that returns nothing records statistics; it computes no loss"),
        Valid("""
            import torch

            def d1_error(input, target, abs_threshold=3.0, rel_threshold=0.05):
                error = (input - target).abs()
                outlier = (error > abs_threshold) & (error / target.abs() > rel_threshold)
                return outlier.float().mean()
        """, "a quotient only compared: inf or NaN decides a boolean and never reaches the value (kornia 0.9)"),
        Valid("""
            import torch
            import torch.nn.functional as F

            def smooth_ap_loss(sims, temperature=0.01):
                n = sims.size(0)
                mask = 1.0 - torch.eye(n)
                mask = mask.unsqueeze(0).repeat(n, 1, 1)
                diff = sims.unsqueeze(1).repeat(1, n, 1) - sims.unsqueeze(2)
                ranks = torch.sum(F.sigmoid(diff / temperature) * mask, dim=-1) + 1
                return 1 - (ranks.diagonal() / ranks).mean()
        """, "1 + a sum of sigmoids times a 0/1 mask built from eye() (pytorch-metric-learning 2.9)"),
    ]
    INVALID = [
        Invalid("""
            from keras import ops

            def relu_normalised_loss(y_true, y_pred):
                s = ops.relu(y_pred)
                return -ops.sum(y_true * s / ops.sum(s, axis=-1, keepdims=True))
        """, "LL103", 5, "relu outputs are nonnegative and can all be 0", fixed="""
            from keras import ops

            def relu_normalised_loss(y_true, y_pred):
                s = ops.relu(y_pred)
                return -ops.sum(ops.divide_no_nan(y_true * s, ops.sum(s, axis=-1, keepdims=True)))
        """),
        Invalid("""
            import tensorflow as tf

            def dice_loss(y_true, y_pred):
                inter = tf.reduce_sum(y_true * y_pred)
                return 1 - 2 * inter / (tf.reduce_sum(y_true) + tf.reduce_sum(y_pred))
        """, "LL103", 5, "Dice without a smooth term", fixed="""
            import tensorflow as tf

            def dice_loss(y_true, y_pred):
                inter = tf.reduce_sum(y_true * y_pred)
                return 1 - tf.math.divide_no_nan(2 * inter, (tf.reduce_sum(y_true) + tf.reduce_sum(y_pred)))
        """),
        Invalid("""
            import tensorflow as tf

            def masked_loss(y_true, y_pred):
                mask = tf.cast(tf.not_equal(y_true, 0), tf.float32)
                per = tf.square(y_true - y_pred) * mask
                return tf.reduce_sum(per) / tf.reduce_sum(mask)
        """, "LL103", 6, "mask count can be 0", fixed="""
            import tensorflow as tf

            def masked_loss(y_true, y_pred):
                mask = tf.cast(tf.not_equal(y_true, 0), tf.float32)
                per = tf.square(y_true - y_pred) * mask
                return tf.math.divide_no_nan(tf.reduce_sum(per), tf.reduce_sum(mask))
        """),
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
        """, "LL103", 6, "product of standard deviations", fixed="""
            from keras import ops

            def pearson_loss(y_true, y_pred):
                xm = y_true - ops.mean(y_true)
                ym = y_pred - ops.mean(y_pred)
                return 1 - ops.divide_no_nan(ops.sum(xm * ym), (ops.std(y_true) * ops.std(y_pred)))
        """),
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
        """, "LL103", 6, "count_nonzero can be 0", fixed="""
            import tensorflow as tf

            def triplet_loss(y_true, y_pred):
                pos = tf.cast(tf.greater(y_true, 0.5), tf.float32)
                num_pos = tf.math.count_nonzero(pos)
                return tf.math.divide_no_nan(tf.reduce_sum(y_pred * pos), tf.cast(num_pos, tf.float32))
        """),
        Invalid("""
            import numpy as np
            import torch

            def ratio_loss(pred, target):
                loss = (pred - target).abs().sum()
                loss /= target.sum()
                return loss
        """, "LL103", 6, "augmented assignment divide by a label sum"),
        Invalid("""
            import jax.numpy as jnp

            def ntxent(embeddings, labels, temperature=0.07):
                same = labels[:, None] == labels[None, :]
                positives = jnp.bool_(same - jnp.eye(labels.shape[0]))
                logits = embeddings @ embeddings.T / temperature
                return -(logits * positives).sum() / positives.sum()
        """, "LL103", 7, "a batch without positive pairs: 0 / 0 (optax 0.2.8 ntxent)"),
        Invalid("""
            import torch

            def pair_loss(dist, pos_idx, n):
                mask = torch.zeros(n)
                mask[pos_idx] = 1
                return (dist * mask).sum() / mask.sum()
        """, "LL103", 6, "a mask filled by index stores can be empty"),
    ]
